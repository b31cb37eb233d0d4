"""Magnitude spectrogram, its crop, and the sliding windows the model sees."""
import numpy as np
from scipy import signal

from dae.audio import headroom
from dae.errors import UserError, refused

NPERSEG = 1024      # samples per spectrogram column (no overlap: also the hop)
TUKEY_ALPHA = 0.4   # taper of the Tukey window
F_MAX = 4000.0      # Hz; higher frequencies are cropped away


def crop_bins(F, f_max=F_MAX):
    """Number of frequency bins kept: ``argmin(|F - f_max|) + 1`` (as the original).

    F : (n_freq,) bin frequencies in Hz. 94 at 44.1 kHz with 1024-sample segments.
    """
    F = np.asarray(F, dtype=np.float64)
    if F.ndim != 1 or F.size == 0:
        raise ValueError(f"F must be a non-empty 1-D array of frequencies, got shape {F.shape}")
    return int(np.argmin(np.abs(F - f_max))) + 1


def magnitude_spectrogram(x, sr, f_max=F_MAX):
    """Magnitude spectrogram cropped to frequencies up to about `f_max`.

    x : (n,) mono samples; sr : sample rate in Hz.
    Returns F (n_freq,) in Hz, T (n_time,) column centres in s, and S
    (n_freq, n_time) linear magnitude, computed exactly as the original:
    ``scipy.signal.spectrogram(x, sr, window=tukey(1024, 0.4), noverlap=0,
    scaling="spectrum", mode="magnitude")``; see `block_spectrogram`.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must be mono (1-D), got shape {x.shape}")
    return block_spectrogram([x], sr, f_max)


def block_spectrogram(blocks, sr, f_max=F_MAX):
    """`magnitude_spectrogram` of the concatenated `blocks`, holding one block at a time.

    blocks : iterable of (n_b,) mono sample arrays, any lengths; sr : sample
    rate in Hz. Returns (F, T, S) as `magnitude_spectrogram` of the whole
    signal, bit for bit: a column depends on its own 1024 samples only, so the
    columns are computed a block of whole columns at a time (the samples left
    over join the next block) and put side by side. Memory: S and one block.

    Columns peaking at 2**HEADROOM_EXP or more (finite samples that would
    overflow the FFT) are transformed scaled down by a power of two and
    scaled back, which is exact; other columns are scipy's call as it is.
    No magnitude exceeds its column's peak sample (the bound is met only at
    the Nyquist frequency), so finite samples give finite magnitudes.
    """
    if not sr > 0:
        raise ValueError(f"sr must be a positive sample rate in Hz, got {sr}")
    F, parts, carry, n = None, [], np.empty(0), 0
    for block in blocks:
        block = np.asarray(block, dtype=np.float64)
        if block.ndim != 1:
            raise ValueError(f"blocks must be mono (1-D), got shape {block.shape}")
        n += block.size
        x = np.concatenate([carry, block]) if carry.size else block
        whole = x.size - x.size % NPERSEG
        if whole:
            F, S = _columns(x[:whole], sr, f_max)
            parts.append(S)
        carry = x[whole:].copy()
    if n < NPERSEG:
        raise UserError(f"audio is {n} samples long, shorter than one {NPERSEG}-sample "
                        "spectrogram column; use a longer clip")
    S = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    T = np.arange(NPERSEG / 2, n - NPERSEG / 2 + 1, NPERSEG) / float(sr)   # scipy's column centres
    return F, T, S


HEADROOM_EXP = 480  # a column peaking below 2**480 cannot overflow the FFT: (2 * 1024 * peak)**2 < 2**1024


def _columns(x, sr, f_max):
    """F (n_freq,) and S (n_freq, n_cols), cropped, of x (n_cols * 1024,): scipy's call, overflow-safe."""
    cols = x.reshape(-1, NPERSEG)
    k = headroom(np.maximum(np.max(cols, axis=1), -np.min(cols, axis=1)), HEADROOM_EXP)
    scaled = k.any()
    if scaled:
        x = np.ldexp(cols, -k[:, None]).ravel()
    F, _, S = signal.spectrogram(x, sr, window=signal.windows.tukey(NPERSEG, alpha=TUKEY_ALPHA),
                                 noverlap=0, scaling="spectrum", mode="magnitude")
    n = crop_bins(F, f_max)
    S = S[:n].copy()                                        # not a view: the uncropped bins are let go
    if scaled:
        with np.errstate(over="ignore"):
            S = np.ldexp(S, k[None, :])
    return F[:n], S


def bins_per_second(sr):
    """Spectrogram columns per second of audio (the hop rate): 43.07 at 44.1 kHz."""
    return float(sr) / NPERSEG


LONG_WINDOW_SECONDS = 1.0  # windows at least this long use the original's 2 s architecture


def variant_for(window_seconds):
    """The model a window of `window_seconds` (s) gets: 'long' (valid padding, an extra 1x1 conv: the
    original's 2 s model) or 'short' (the 0.5 s one)."""
    return "long" if window_seconds >= LONG_WINDOW_SECONDS else "short"


def window_width(T, seconds):
    """Window width in spectrogram columns: ``argmin(|T - seconds|) + 1``, rounded up to even.

    T : (n_time,) column centres in s; seconds : window length in s (> 0).
    Gives 22 for 0.5 s and 88 for 2 s at 44.1 kHz, as the original.
    """
    if not seconds > 0:
        raise refused("window_seconds", f"={seconds} must be positive, e.g. 0.5 or 2")
    T = np.asarray(T, dtype=np.float64)
    w = int(np.argmin(np.abs(T - seconds))) + 1
    return w + (w % 2)


def scale_unit(S):
    """Scale by the global min and max to [0, 1], as the original.

    S : array of magnitudes. Returns (scaled float32 array, lo, hi). A constant
    (e.g. silent) input has no range to scale and is an error, not NaNs.
    """
    S = np.asarray(S)
    lo, hi = float(np.min(S)), float(np.max(S))
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise UserError("the spectrogram has NaN or infinite values; re-export the audio and rerun save_dataset.py")
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        raise UserError("the spectrogram is constant (silent audio?); use a song with sound in it and rerun save_dataset.py")
    return ((S - lo) / (hi - lo)).astype(np.float32), lo, hi


def window_times(n_windows, width, sr):
    """Start, centre and end time (s) of the audio each window summarises.

    Window j covers spectrogram columns j .. j+width-1, i.e. samples
    [j * 1024, (j + width) * 1024). Returns three (n_windows,) arrays.
    """
    hop = NPERSEG / float(sr)
    start = np.arange(n_windows) * hop
    end = start + width * hop
    return start, (start + end) / 2, end


def sliding_windows(X, width):
    """All windows of `width` consecutive columns, as a view (no copy).

    X : (n_time, n_freq) spectrogram, time first. Returns (n_time - width + 1,
    width, n_freq).
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be (n_time, n_freq), got shape {X.shape}")
    if not 0 < width <= X.shape[0]:
        raise ValueError(f"width={width} must be in 1..{X.shape[0]} (the number of columns)")
    return np.lib.stride_tricks.sliding_window_view(X, width, axis=0).transpose(0, 2, 1)
