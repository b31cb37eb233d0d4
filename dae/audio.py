"""Reading and writing audio.

WAV (8/16/24/32/64-bit integer, 32/64-bit float, mono or multi-channel, any
sample rate, extra chunks allowed) is read with scipy; every other container
and codec (mp3, flac, ogg, opus, m4a, aac, aiff, wma, and the sound track of
video files: mp4, mkv, webm, mov, ...) is decoded by the ffmpeg binary that
the imageio-ffmpeg wheel ships, and so are WAV codecs scipy does not know.

Damage: a WAV file whose data chunk promises more bytes than the file holds
(cut short, or a lying header) is refused. A compressed file that ffmpeg can
only partly decode is *decoded, with a warning* on stderr that says how much
was read (against the duration the container declares) and what ffmpeg
reported; the spectrogram then lacks the damaged part, so later times shift.
"""
import re
import struct
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from dae.errors import UserError

_WAV_MAGIC = (b"RIFF", b"RIFX", b"RF64")
# bytes per sample -> numpy dtype code, for write_wav
_ENCODINGS = {"uint8": (1, 1), "int16": (2, 1), "int24": (3, 1), "int32": (4, 1),
              "float32": (4, 3), "float64": (8, 3)}


def to_float(data):
    """Integer or float samples -> float64 in [-1, 1] (full-scale integer = 1).

    data : array (n,) or (n, channels) as read from a WAV file. 8-bit WAV is
    unsigned (silence = 128); 24-bit arrives from scipy left-aligned in int32,
    so dividing by the container's full scale is right for every width.
    """
    data = np.asarray(data)
    if data.dtype == np.uint8:
        return (data.astype(np.float64) - 128.0) / 128.0
    if np.issubdtype(data.dtype, np.signedinteger):
        return data.astype(np.float64) / float(2 ** (8 * data.dtype.itemsize - 1))
    if np.issubdtype(data.dtype, np.floating):
        return data.astype(np.float64)
    raise UserError(f"unsupported sample type {data.dtype}; convert the file to 16-bit PCM WAV")


def to_mono(x):
    """(n,) or (n, channels) float -> (n,) mean of the channels (no overflow: float64)."""
    x = np.asarray(x, dtype=np.float64)
    return x if x.ndim == 1 else x.mean(axis=1)


def read_audio(path):
    """Read an audio file as mono float64 samples.

    path : str or Path to a WAV file or anything the bundled ffmpeg decodes
        (whatever its suffix; a video file gives its sound track).
    Returns (x, sr): x of shape (n,) in [-1, 1] for integer formats, and the
    sample rate in Hz.

    A truncated WAV file (its header promises more data than is there) and a
    file without sound are a UserError. A compressed file that decodes only in
    part is read, with a one-line warning on stderr naming how many seconds
    were decoded of how many declared.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"audio file not found: {path}; put the song there or pass --song path/to/song.wav")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic in _WAV_MAGIC:
        _check_wav_length(path)
        try:
            sr, data = _read_wav(path)
        except UserError as scipy_error:   # a codec scipy lacks (ADPCM, mu-law, ...): try ffmpeg
            try:
                sr, data = _read_with_ffmpeg(path)
            except UserError:
                raise scipy_error from None
    else:
        sr, data = _read_with_ffmpeg(path)
    if data.size == 0:
        raise UserError(f"{path} holds no samples; use a file with audio in it")
    x = to_mono(to_float(data))
    if not np.all(np.isfinite(x)):
        raise UserError(f"{path} contains NaN or infinite samples; re-export the audio")
    return x, int(sr)


def _read_wav(path):
    from scipy.io import wavfile
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown chunks (LIST, bext, ...) are fine
            sr, data = wavfile.read(path)
    except Exception as e:  # scipy raises ValueError, EOFError, struct.error, ...
        raise UserError(f"{path} is not a readable WAV file ({e}); re-export it as PCM WAV") from None
    return sr, data


def wav_data_claim(path):
    """(bytes the data chunk declares, bytes there after its header) of a WAV file.

    None when the file has no data chunk, or declares an unknown length
    (0 or 0xFFFFFFFF, as streaming writers do). RIFF, RIFX and RF64 (ds64) headers.
    """
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        form = f.read(4)
        order = ">" if form == b"RIFX" else "<"
        f.seek(12)
        pos, long_size = 12, None
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(8)
            cid, n = head[:4], struct.unpack(order + "I", head[4:])[0]
            if cid == b"ds64" and n >= 16:
                long_size = struct.unpack("<Q", f.read(16)[8:16])[0]    # riffSize, then dataSize
            if cid == b"data":
                if form == b"RF64" and n == 0xFFFFFFFF and long_size is not None:
                    n = long_size
                elif n in (0, 0xFFFFFFFF):
                    return None
                return n, size - (pos + 8)
            pos += 8 + n + (n & 1)
    return None


def _check_wav_length(path):
    claim = wav_data_claim(path)
    if claim is not None and claim[0] > claim[1]:
        declared, present = claim
        raise UserError(f"{path} is damaged: its header promises {declared:,} bytes of audio but only "
                        f"{max(present, 0):,} ({max(present, 0) / declared:.0%}) are there (cut short?); "
                        "use the complete file, or re-export it")


_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
SHORTFALL_S = 0.25        # decoded audio may fall this short of the declared duration (codec padding) ...
SHORTFALL_FRACTION = 0.02  # ... or this fraction of it, whichever is larger


def _read_with_ffmpeg(path):
    """Decode with the bundled ffmpeg to a temporary float WAV, then read that.

    Warns (one line on stderr) when ffmpeg reports decoding errors or decodes
    clearly less than the container declares (see module docstring).
    """
    import imageio_ffmpeg
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "decoded.wav"
        proc = subprocess.run([exe, "-nostdin", "-hide_banner", "-loglevel", "repeat+level+info",
                               "-i", str(path), "-vn", "-acodec", "pcm_f32le", "-f", "wav", str(out)],
                              capture_output=True, text=True, errors="replace")
        log = proc.stderr.splitlines()
        errors = [_strip_level(l) for l in log if "[error]" in l or "[fatal]" in l]
        about_input = _input_part(log)
        has_audio = any(": Audio:" in l for l in about_input)
        if proc.returncode != 0 or not out.exists():
            if any(": Video:" in l for l in about_input) and not has_audio:
                raise UserError(f"{path} has no sound track; give a file with audio in it")
            why = (errors or ["unknown format"])[-1]
            raise UserError(f"{path} is not an audio file ffmpeg can decode ({why}); use a WAV, FLAC, MP3, "
                            "M4A, OGG or any other audio or video file with sound")
        sr, data = _read_wav(out)
    decoded = len(data) / sr if sr else 0.0
    declared = _declared_duration(about_input)
    video = any(": Video:" in l and "attached pic" not in l for l in about_input)  # may outlast the sound
    short = (declared is not None and not video
             and declared - decoded > max(SHORTFALL_S, SHORTFALL_FRACTION * declared))
    if (short or errors) and len(data):
        read = f"decoded {decoded:.2f} s" + (f" of the {declared:.2f} s it declares ({decoded / declared:.0%})"
                                              if declared else "")
        said = f"; ffmpeg: {errors[0]}" + (f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else "") \
            if errors else ""
        print(f"warning: {path} is damaged: {read}{said}; the undecodable part is left out, so times after it "
              "shift; replace the file for an exact result", file=sys.stderr)
    return sr, data


def _input_part(log):
    """The lines of ffmpeg's log that describe the input file (before the output's)."""
    for i, line in enumerate(log):
        if "Stream mapping" in line or "Output #" in line:
            return log[:i]
    return log


def _strip_level(line):
    """An ffmpeg log line without its [context @ 0x...] and [level] prefixes, shortened."""
    text = re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip()
    return text[:120]


def _declared_duration(log):
    """The input's duration in seconds from ffmpeg's 'Duration: HH:MM:SS.ss' line, or None."""
    for line in log:
        m = _DURATION.search(line)
        if m:
            h, mnt, sec = m.groups()
            return int(h) * 3600 + int(mnt) * 60 + float(sec)
    return None


def write_wav(path, x, sr, encoding="int16", extra_chunk=False):
    """Write samples to a WAV file.

    path : destination; x : (n,) or (n, channels) float in [-1, 1] (clipped for
    integer encodings); sr : sample rate in Hz; encoding : one of uint8, int16,
    int24, int32, float32, float64; extra_chunk : add a LIST/INFO chunk before
    the data, as many real files have.
    """
    if encoding not in _ENCODINGS:
        raise ValueError(f"encoding={encoding!r}; choose one of {sorted(_ENCODINGS)}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"x has shape {x.shape}; expected (n,) or (n, channels)")
    width, tag = _ENCODINGS[encoding]
    if encoding == "uint8":
        raw = (np.clip(np.round(x * 128.0 + 128.0), 0, 255)).astype("<u1").tobytes()
    elif tag == 1:
        full = 2 ** (8 * width - 1)
        ints = np.clip(np.round(x * full), -full, full - 1).astype("<i8")
        raw = ints.astype("<i4").view("<u1").reshape(-1, 4)[:, :width].tobytes() if width == 3 \
            else ints.astype(f"<i{width}").tobytes()
    else:
        raw = x.astype(f"<f{width}").tobytes()
    channels = x.shape[1]
    fmt = (tag.to_bytes(2, "little") + channels.to_bytes(2, "little") + int(sr).to_bytes(4, "little")
           + (int(sr) * channels * width).to_bytes(4, "little") + (channels * width).to_bytes(2, "little")
           + (8 * width).to_bytes(2, "little"))
    chunks = [b"fmt " + len(fmt).to_bytes(4, "little") + fmt]
    if extra_chunk:
        info = b"INFO" + b"INAM" + (14).to_bytes(4, "little") + b"deep-audio-emb"
        chunks.append(b"LIST" + len(info).to_bytes(4, "little") + info)
    data = b"data" + len(raw).to_bytes(4, "little") + raw + (b"\0" if len(raw) % 2 else b"")
    chunks.append(data)
    body = b"WAVE" + b"".join(chunks)
    from dae.artifacts import atomic_path
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
