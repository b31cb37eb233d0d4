"""Stage 1 data: find the song's audio, make its spectrogram, save and load it."""
import numpy as np

from dae import artifacts, audio, synth
from dae.errors import UserError
from dae.spectrogram import NPERSEG, TUKEY_ALPHA, F_MAX, bins_per_second, magnitude_spectrogram, window_width

DEMO = "demo"
SAVE_HINT = "run `python save_dataset.py` (with the same --song) first"


def find_audio(song, paths):
    """The audio file for `song`; the demo song is synthesised on first use."""
    candidates = paths.audio_candidates(song)
    for c in candidates:
        if c.is_file():
            return c
    if str(song) == DEMO:
        target = paths.data / f"{DEMO}.wav"
        print(f"synthesising the demo song into {target}")
        audio.write_wav(target, synth.demo_song(), synth.SR, "int16")
        return target
    if len(candidates) == 1:
        raise UserError(f"audio file not found: {candidates[0]}; check the path given to --song")
    raise UserError(f"no audio found for song {song!r} (looked for {', '.join(map(str, candidates))}); "
                    "copy the file there or pass --song path/to/song.wav")


def make(song, paths, window_seconds):
    """Read the song, compute its cropped magnitude spectrogram, save it with metadata.

    Returns the metadata dict written to the sidecar.
    """
    source = find_audio(song, paths)
    x, sr = audio.read_audio(source)
    if np.max(np.abs(x)) == 0:
        raise UserError(f"{source} is silent (every sample is zero); use a song with sound in it")
    F, T, S = magnitude_spectrogram(x, sr)
    width = window_width(T, window_seconds)
    meta = {
        "source": str(source), "source_sha256": artifacts.file_hash(source),
        "sample_rate": sr, "duration_s": x.size / sr, "bins_per_second": bins_per_second(sr),
        "n_time": int(S.shape[1]), "height": int(S.shape[0]),
        "window_seconds": float(window_seconds), "window_width": width,
        "nperseg": NPERSEG, "tukey_alpha": TUKEY_ALPHA, "f_max": F_MAX, "f_top": float(F[-1]),
    }
    artifacts.save_npz(paths.spectrogram, F=F, T=T, S=S, sample_rate=sr, height=S.shape[0],
                       window_width=width, bins_per_second=bins_per_second(sr))
    artifacts.write_sidecar(paths.spectrogram, "spectrogram", {"song": paths.song,
                            "window_seconds": float(window_seconds)}, **meta)
    return meta


def load(paths):
    """Load a saved spectrogram: (F, T, S, meta). S is (n_freq, n_time)."""
    meta = artifacts.read_sidecar(paths.spectrogram, "spectrogram", SAVE_HINT)
    with np.load(paths.spectrogram) as d:
        return d["F"], d["T"], d["S"], meta
