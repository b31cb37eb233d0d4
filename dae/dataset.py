"""Stage 1 data: find the song's audio, make its spectrogram, save and load it."""
from pathlib import Path

import numpy as np

from dae import audio, layout, provenance, store, synth
from dae.errors import UserError
from dae.spectrogram import NPERSEG, TUKEY_ALPHA, F_MAX, bins_per_second, block_spectrogram, window_width

DEMO = "demo"
SAVE_HINT = "run `python save_dataset.py` (with the same --song) first"


def find_audio(song, paths):
    """The audio file for `song`; the demo song is synthesised on first use.

    song : a path (used as given) or a name, looked up as data/<name>.<ext> for
    every ext in `layout.AUDIO_SUFFIXES`. Two different files for one name
    (data/x.mp3 and data/x.flac) are refused rather than one picked silently.
    """
    candidates = [c for c in paths.audio_candidates(song)]
    found = [c for c in candidates if c.is_file()]
    if len(found) > 1 and len({provenance.file_hash(c) for c in found}) > 1:
        raise UserError(f"song {paths.song!r} has {len(found)} different audio files "
                        f"({', '.join(c.name for c in found)} in {found[0].parent}); "
                        f"pass the one you mean with --song {found[0]}, or rename or remove the others")
    if found:
        return found[0]
    if str(song) == DEMO:
        target = paths.data / f"{DEMO}.wav"
        print(f"synthesising the demo song into {target}")
        audio.write_wav(target, synth.demo_song(), synth.SR, "int16")
        return target
    if len(candidates) == 1:
        raise UserError(f"audio file not found: {candidates[0]}; check the path given to --song")
    raise UserError(f"no audio found for song {song!r} (looked for {paths.data / paths.song}.wav, .flac, .mp3, "
                    ".m4a, .ogg, ... or any audio or video file); copy the file there or pass --song path/to/song.wav")


def check_same_song(paths, source, sha256, dataset=None):
    """Refuse to file `source` under a song folder made from a different audio file.

    Songs are filed by file name, so a.mp3 and b/a.flac both go to data/a/; the
    second would silently replace the first's spectrogram (and orphan its runs).
    The same file with new contents (an edited song) is remade as usual.
    dataset : the file to compare with (default the spectrogram; a video's frames).
    """
    import json
    try:
        old = json.loads(layout.sidecar_path(dataset or paths.spectrogram).read_text())
    except (OSError, ValueError):
        return
    if not isinstance(old, dict) or not isinstance(old.get("source"), str):
        return
    if old.get("source_sha256") == sha256 or _same_path(old["source"], source):
        return
    raise UserError(f"{paths.song_dir} already holds the song {old['source']}, a different file with the same "
                    f"name as {source}; rename {source.name} to keep both (songs are filed by file name), "
                    f"or remove {paths.song_dir} to replace it")


def _same_path(a, b):
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def make(song, paths, window_seconds):
    """Read the song, compute its cropped magnitude spectrogram, save it with metadata.

    Returns the metadata dict written to the sidecar.
    """
    source = find_audio(song, paths)
    source_sha256 = provenance.file_hash(source)
    check_same_song(paths, source, source_sha256)
    with audio.open_audio(source) as (sr, blocks):        # a block at a time: memory is S and a few blocks
        song = _Measured(blocks, source)
        F, T, S = block_spectrogram(song, sr)
    if not np.all(np.isfinite(S)):   # a guard: rounding at the very top of float64's range is all that could
        raise UserError(f"{source}: its samples (up to {song.peak:.3g}) are too large for a finite spectrogram; "
                        "scale the audio down (e.g. normalise it to a peak of 1) and re-export it")
    width = window_width(T, window_seconds)
    meta = {
        "source": str(source), "source_sha256": source_sha256,
        "sample_rate": sr, "duration_s": song.n / sr, "bins_per_second": bins_per_second(sr),
        "n_time": int(S.shape[1]), "height": int(S.shape[0]),
        "window_seconds": float(window_seconds), "window_width": width,
        "nperseg": NPERSEG, "tukey_alpha": TUKEY_ALPHA, "f_max": F_MAX, "f_top": float(F[-1]),
    }
    # the arrays depend on the audio only (the window is in the sidecar): saving the song again for
    # another WINDOW_SECONDS gives the same bytes and leaves the runs made from it valid
    with store.group_commit() as group:          # the arrays and their record as one unit
        target = group.stage(paths.spectrogram)
        store.save_npz(target, F=F, T=T, S=S, sample_rate=sr, height=S.shape[0],
                       bins_per_second=bins_per_second(sr))
        provenance.write_sidecar(target, "spectrogram", {"song": paths.song, "window_seconds": float(window_seconds)},
                                 inputs={"audio": (source, meta["source_sha256"])}, **meta)
    return meta


class _Measured:
    """Mono sample blocks passed through, counted (`n`) and their largest magnitude kept (`peak`).

    Silence (every sample zero) is refused once the last block has passed.
    """

    def __init__(self, blocks, source):
        self.blocks, self.source, self.n, self.peak = blocks, source, 0, 0.0

    def __iter__(self):
        for x in self.blocks:
            self.n += x.size
            self.peak = max(self.peak, float(np.max(x)), -float(np.min(x)))
            yield x
        if self.peak == 0:
            raise UserError(f"{self.source} is silent (every sample is zero); use a song with sound in it")


def load(paths, need_audio=False):
    """Load a saved spectrogram: (F, T, S, meta). S is (n_freq, n_time).

    The spectrogram is checked against its record and its audio (when the audio
    is where it was, or always with `need_audio`); meta is the checked record.
    """
    meta = provenance.check(paths, "spectrogram", need_audio=need_audio)["spectrogram"]
    return (*arrays(meta), meta)


def arrays(meta):
    """(F, T, S) of a checked spectrogram record."""
    d = provenance.arrays(meta, ("F", "T", "S"))
    F, T, S = d["F"], d["T"], d["S"]
    if F.ndim != 1 or T.ndim != 1 or S.ndim != 2 or S.shape != (len(F), len(T)) or S.shape[1] != meta["n_time"]:
        raise UserError(f"{meta['path']} holds arrays of inconsistent shapes; "
                        f"rerun {provenance.rerun('spectrogram')}")
    return F, T, S
