"""Reading and writing audio.

WAV (8/16/24/32/64-bit integer, 32/64-bit float, mono or multi-channel, any
sample rate, extra chunks allowed) is read directly; every other container
and codec (mp3, flac, ogg, opus, m4a, aac, aiff, wma, and the sound track of
video files: mp4, mkv, webm, mov, ...) is decoded by the ffmpeg binary that
the imageio-ffmpeg wheel ships, and so are WAV codecs this reader does not know.

Audio is read in blocks (`open_audio`), each mixed to mono as it arrives, so a
long song never has to be held whole in its file's layout: stage 1 holds a
few blocks at a time. `read_audio` gives the whole song as one array.

Damage: a WAV file whose data chunk promises more bytes than the file holds
(cut short, or a lying header) is refused, and so is a header whose sample
rate is not positive. A compressed file that ffmpeg can only partly decode is
*decoded, with a warning* on stderr that says how much was read (against the
duration the container declares) and what ffmpeg reported; the spectrogram
then lacks the damaged part, so later times shift.
"""
import contextlib
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

from dae import ffmpeg, store
from dae.errors import UserError

_WAV_MAGIC = (b"RIFF", b"RIFX", b"RF64")
# bytes per sample -> numpy dtype code, for write_wav
_ENCODINGS = {"uint8": (1, 1), "int16": (2, 1), "int24": (3, 1), "int32": (4, 1),
              "float32": (4, 3), "float64": (8, 3)}
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
BLOCK_FRAMES = 1 << 18   # sample frames read at a time (6 s at 44.1 kHz); a multiple of the 1024-sample column
MIX_HEADROOM_EXP = 960   # frames peaking at 2**960 or more are scaled by a power of two to be averaged


def headroom(peak, limit_exp):
    """Powers of two that bring magnitudes below ``2**limit_exp``: k (m,) int, peak * 2**-k < 2**limit_exp.

    peak : (m,) magnitudes >= 0; limit_exp : int. k is 0 wherever peak is
    already below 2**limit_exp, and where it is NaN or infinite (nothing to
    scale: the caller refuses such values). Scaling by 2**-k and back by 2**k
    is exact in floating point, so a linear computation (a mean, an FFT) done
    on the scaled values and scaled back gives the bits it would give
    unscaled, but cannot overflow on the way.
    """
    peak = np.asarray(peak, dtype=np.float64)
    if np.any(peak < 0):
        raise ValueError(f"peak must hold magnitudes >= 0, got {peak[peak < 0].flat[0]}")
    return np.maximum(0, np.frexp(peak)[1] - int(limit_exp))


def to_float(data):
    """Integer or float samples -> float64 in [-1, 1] (full-scale integer = 1).

    data : array (n,) or (n, channels) as read from a WAV file. 8-bit WAV is
    unsigned (silence = 128); 24-bit arrives left-aligned in int32, so
    dividing by the container's full scale is right for every width.
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
    """(n,) or (n, channels) float -> (n,) float64 mean of the channels.

    Finite samples give a finite mean, however large: frames whose peak is
    2**MIX_HEADROOM_EXP or more are averaged scaled down by a power of two
    (exact, see `headroom`); the others exactly as ``x.mean(axis=1)``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return x
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"x must be (n,) or (n, channels) with channels >= 1, got shape {x.shape}")
    if max(np.max(x, initial=0.0), -np.min(x, initial=0.0)) < 2.0 ** MIX_HEADROOM_EXP:   # False for NaN
        return x.mean(axis=1)
    k = headroom(np.maximum(np.max(x, axis=1), -np.min(x, axis=1)), MIX_HEADROOM_EXP)
    with np.errstate(invalid="ignore", over="ignore"):            # NaN / inf frames: the caller refuses them
        return np.ldexp(np.ldexp(x, -k[:, None]).mean(axis=1), k)


def read_audio(path):
    """Read an audio file as mono float64 samples.

    path : str or Path to a WAV file or anything the bundled ffmpeg decodes
        (whatever its suffix; a video file gives its sound track).
    Returns (x, sr): x of shape (n,) in [-1, 1] for integer formats, and the
    sample rate in Hz. Refuses and warns as `open_audio`.
    """
    with open_audio(path) as (sr, blocks):
        x = np.concatenate(list(blocks))
    return x, sr


@contextlib.contextmanager
def open_audio(path, block_frames=None):
    """Open an audio file to read it in blocks: yields (sr, blocks).

    path : a WAV file or anything the bundled ffmpeg decodes; block_frames :
    sample frames per block (>= 1), default `BLOCK_FRAMES`.
    sr : the sample rate in Hz (a positive int). blocks : an iterator of
    mono float64 blocks (n_b,), n_b = block_frames except for the last, in
    [-1, 1] for integer formats, channels averaged by `to_mono`.

    A missing file, a truncated WAV file (its header promises more data than
    is there), a sample rate that is not positive and a file without sound are
    a UserError when opened; NaN or infinite samples and a file that holds no
    samples, while reading. A compressed file that decodes only in part is
    read, with a one-line warning on stderr (after its last block) naming how
    many seconds were decoded of how many declared.
    """
    path = Path(path)
    block_frames = BLOCK_FRAMES if block_frames is None else block_frames
    if int(block_frames) < 1:
        raise ValueError(f"block_frames must be at least 1, got {block_frames}")
    if not path.is_file():
        raise UserError(f"audio file not found: {path}; put the song there or pass --song path/to/song.wav")
    with contextlib.ExitStack() as stack:
        sr, raw = _open_raw(path, int(block_frames), stack)
        if not sr > 0:
            raise UserError(f"{path} declares a sample rate of {sr} Hz in its header, so its times are unknown; "
                            "re-export it with its real sample rate (e.g. 44100 Hz)")
        yield int(sr), _mono_blocks(path, raw)


def _open_raw(path, block_frames, stack):
    """(sr, iterator of (n_b, channels) sample blocks in the file's own type): WAV read here, else ffmpeg."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic not in _WAV_MAGIC:
        return stack.enter_context(_ffmpeg_blocks(path, block_frames))
    _check_wav_length(path)
    try:
        return stack.enter_context(_wav_blocks(path, block_frames))
    except UserError as wav_error:   # a codec this reader lacks (ADPCM, mu-law, ...), or not WAVE (AVI): ffmpeg
        try:
            return stack.enter_context(_ffmpeg_blocks(path, block_frames))
        except UserError:
            raise wav_error from None


def _mono_blocks(path, raw):
    """Mono float64 blocks of raw sample blocks; non-finite samples and no samples at all are refused."""
    total = 0
    for block in raw:
        x = to_mono(to_float(block))
        if not np.all(np.isfinite(x)):
            raise UserError(f"{path} contains NaN or infinite samples; re-export the audio")
        total += x.size
        if x.size:
            yield x
    if total == 0:
        raise UserError(f"{path} holds no samples; use a file with audio in it")


# ---------------------------------------------------------------- WAV

def _skip(f, n):
    if f.seekable():
        f.seek(n, 1)
    else:
        while n > 0:
            got = len(f.read(min(n, 1 << 16)))
            if not got:
                return
            n -= got


def _wav_header(f):
    """Walk a WAV stream's chunks up to its audio: (byte order, fmt chunk bytes or None, data bytes declared).

    f : binary file object at the file's start (a file or a pipe); left at the
    first byte of audio. The declared length is the data chunk's (the ds64
    chunk's for RF64), 0xFFFFFFFF for unknown (as writers to a pipe leave it).
    None when the stream is not a WAVE file or has no data chunk.
    """
    head = f.read(12)
    if len(head) < 12 or head[:4] not in _WAV_MAGIC or head[8:12] != b"WAVE":
        return None
    order = ">" if head[:4] == b"RIFX" else "<"
    fmt = long_size = None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            return None
        cid, n = chunk[:4], struct.unpack(order + "I", chunk[4:])[0]
        if cid == b"data":
            if head[:4] == b"RF64" and n == 0xFFFFFFFF and long_size is not None:
                n = long_size
            return order, fmt, n
        rest = n + (n & 1)                                          # the chunk and its pad byte
        if cid in (b"fmt ", b"ds64"):
            body = f.read(n)
            rest -= len(body)
            if cid == b"fmt ":
                fmt = body
            elif len(body) >= 16:
                long_size = struct.unpack("<Q", body[8:16])[0]    # riffSize, then dataSize
        _skip(f, rest)


def _wav_dtype(order, fmt):
    """(channels, sr, numpy dtype of one sample as stored, bytes per sample) of a fmt chunk.

    A UserError names what this reader cannot read (ffmpeg may: the caller tries it).
    """
    if fmt is None or len(fmt) < 16:
        raise UserError("no valid fmt chunk before the data")
    tag, channels, sr, _, block_align, bits = struct.unpack(order + "HHIIHH", fmt[:16])
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack(order + "H", fmt[24:26])[0]   # the sub-format GUID's first field
    width = block_align // channels if channels else 0
    if channels < 1 or width < 1 or width * channels != block_align:
        raise UserError(f"{channels} channels in blocks of {block_align} bytes")
    if tag == _PCM and width == 1:
        return channels, sr, np.dtype("u1"), width
    if tag == _PCM and width <= 8:                      # 3, 5, 6, 7 bytes: left-aligned in the next wider int
        return channels, sr, np.dtype(f"{order}i{width if width in (2, 4, 8) else 4 if width < 4 else 8}"), width
    if tag == _FLOAT and width in (4, 8):
        return channels, sr, np.dtype(f"{order}f{width}"), width
    raise UserError(f"unsupported WAV encoding (format {tag:#06x}, {bits} bits)")


def _samples(raw, order, dtype, width, channels):
    """Bytes of whole frames -> (n, channels) samples; odd widths (24-bit) left-aligned in int32 / int64."""
    if dtype.itemsize == width:
        return np.frombuffer(raw, dtype).reshape(-1, channels)
    packed = np.frombuffer(raw, np.uint8).reshape(-1, width)
    wide = np.zeros((len(packed), dtype.itemsize), np.uint8)
    if order == ">":
        wide[:, :width] = packed
    else:
        wide[:, -width:] = packed
    return wide.view(dtype).reshape(-1, channels)


@contextlib.contextmanager
def _wav_blocks(path, block_frames):
    """(sr, blocks of (n_b, channels) samples) of a PCM or IEEE-float WAV file, read from disk block by block."""
    with open(path, "rb") as f:
        header = _wav_header(f)
        if header is None:
            raise UserError(f"{path} is not a readable WAV file (no WAVE data chunk); re-export it as PCM WAV")
        order, fmt, declared = header
        try:
            channels, sr, dtype, width = _wav_dtype(order, fmt)
        except UserError as e:
            raise UserError(f"{path} is not a readable WAV file ({e}); re-export it as PCM WAV") from None
        frame = width * channels
        left = None if declared == 0xFFFFFFFF else declared // frame * frame

        def blocks():
            nonlocal left
            while left is None or left > 0:
                want = block_frames * frame if left is None else min(block_frames * frame, left)
                raw = f.read(want)
                raw = raw[:len(raw) // frame * frame]
                if not raw:
                    return
                if left is not None:
                    left -= len(raw)
                yield _samples(raw, order, dtype, width, channels)
        yield sr, blocks()


def wav_data_claim(path):
    """(bytes the data chunk declares, bytes there after its header) of a WAV file.

    None when the file has no data chunk, or declares an unknown length
    (0 or 0xFFFFFFFF, as streaming writers do). RIFF, RIFX and RF64 (ds64) headers.
    """
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        header = _wav_header(f)
        if header is None or header[2] in (0, 0xFFFFFFFF):
            return None
        return header[2], size - f.tell()


def _check_wav_length(path):
    claim = wav_data_claim(path)
    if claim is not None and claim[0] > claim[1]:
        declared, present = claim
        raise UserError(f"{path} is damaged: its header promises {declared:,} bytes of audio but only "
                        f"{max(present, 0):,} ({max(present, 0) / declared:.0%}) are there (cut short?); "
                        "use the complete file, or re-export it")


# ---------------------------------------------------------------- ffmpeg

SHORTFALL_S = 0.25        # decoded audio may fall this short of the declared duration (codec padding) ...
SHORTFALL_FRACTION = 0.02  # ... or this fraction of it, whichever is larger


@contextlib.contextmanager
def _ffmpeg_blocks(path, block_frames):
    """(sr, blocks of (n_b, channels) float32 samples) decoded by the bundled ffmpeg, streamed through a pipe.

    Refuses (UserError) a file ffmpeg cannot decode or that has no sound, and
    warns (one line on stderr, after the last block) when ffmpeg reports
    decoding errors or decodes clearly less than the container declares (see
    module docstring).
    """
    with tempfile.TemporaryFile() as log_file:
        proc = ffmpeg.reader(ffmpeg.logged_command("-i", str(path), "-vn", "-acodec", "pcm_f32le", "-f", "wav",
                                                   "pipe:1"), log_file)

        def finish():
            """Wait for ffmpeg (its output closed: read to its end, or abandoned); (the input's log lines,
            the error lines, the exit status)."""
            proc.stdout.close()
            code = proc.wait()
            log_file.seek(0)
            log = log_file.read().decode(errors="replace").splitlines()
            about = ffmpeg.input_part(log)
            return about, ffmpeg.errors(log), code

        def refuse(about, errors):
            if any(": Video:" in l for l in about) and not any(": Audio:" in l for l in about):
                raise UserError(f"{path} has no sound track; give a file with audio in it")
            why = (errors or ["unknown format"])[-1]
            raise UserError(f"{path} is not an audio file ffmpeg can decode ({why}); use a WAV, FLAC, MP3, "
                            "M4A, OGG or any other audio or video file with sound")

        try:
            header = _wav_header(proc.stdout)             # None when ffmpeg wrote nothing: it failed
            if header is None:
                refuse(*finish()[:2])
            channels, sr, dtype, width = _wav_dtype(*header[:2])   # ffmpeg's own float WAV
            frame = width * channels

            def blocks():
                frames = 0
                while True:
                    raw = proc.stdout.read(block_frames * frame)
                    raw = raw[:len(raw) // frame * frame]
                    if not raw:
                        break
                    frames += len(raw) // frame
                    yield _samples(raw, "<", dtype, width, channels)
                about, errors, code = finish()
                if code != 0:
                    refuse(about, errors)
                if frames:
                    _warn_if_damaged(path, frames / sr, about, errors)
            yield sr, blocks()
        finally:
            proc.stdout.close()
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _warn_if_damaged(path, decoded, about, errors):
    """One warning line when ffmpeg reported errors or decoded clearly less than the input declares."""
    declared = ffmpeg.declared_duration(about)
    video = any(": Video:" in l and "attached pic" not in l for l in about)  # may outlast the sound
    short = (declared is not None and not video
             and declared - decoded > max(SHORTFALL_S, SHORTFALL_FRACTION * declared))
    if short or errors:
        read = f"decoded {decoded:.2f} s" + (f" of the {declared:.2f} s it declares ({decoded / declared:.0%})"
                                              if declared else "")
        said = f"; ffmpeg: {errors[0]}" + (f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else "") \
            if errors else ""
        print(f"warning: {path} is damaged: {read}{said}; the undecodable part is left out, so times after it "
              "shift; replace the file for an exact result", file=sys.stderr)


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
    with store.atomic_path(path) as tmp:
        Path(tmp).write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
