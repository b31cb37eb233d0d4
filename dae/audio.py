"""Reading and writing audio.

WAV (8/16/24/32/64-bit integer, 32/64-bit float, mono or multi-channel, any
sample rate, extra chunks allowed) is read with scipy; mp3, flac, ogg and other
formats are decoded by the ffmpeg binary that the imageio-ffmpeg wheel ships.
"""
import subprocess
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

    path : str or Path to a WAV, FLAC, MP3, OGG (anything ffmpeg decodes).
    Returns (x, sr): x of shape (n,) in [-1, 1] for integer formats, and the
    sample rate in Hz.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"audio file not found: {path}; put the song there or pass --song path/to/song.wav")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic in _WAV_MAGIC:
        sr, data = _read_wav(path)
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


def _read_with_ffmpeg(path):
    """Decode with the bundled ffmpeg to a temporary float WAV, then read that."""
    import imageio_ffmpeg
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "decoded.wav"
        proc = subprocess.run([exe, "-nostdin", "-v", "error", "-i", str(path), "-vn",
                               "-acodec", "pcm_f32le", "-f", "wav", str(out)],
                              capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            why = (proc.stderr.strip().splitlines() or ["unknown format"])[-1]
            raise UserError(f"{path} is not an audio file ffmpeg can decode ({why}); use WAV, FLAC, MP3 or OGG")
        return _read_wav(out)


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
