"""Song-level features of a spectrogram, to see which kinds of song a variant wins on.

Small numeric functions in the style of librosa's: one job each, shapes and units
in the docstring, input checked at the door. `song_features` reads a song's saved
spectrogram (checked against its record) and returns them all.
"""
import numpy as np

from dae.errors import UserError

BAR_SECONDS = (1.0, 4.0)   # lags searched for the bar: 4/4 bars from 240 down to 60 beats per minute


def _check(S):
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] < 1 or S.shape[1] < 2:
        raise ValueError(f"S must be a (n_freq, n_time) magnitude spectrogram, got shape {S.shape}")
    if not np.all(np.isfinite(S)) or np.any(S < 0):
        raise ValueError("S must hold finite, non-negative magnitudes")
    return S


def periodicity(S, frame_seconds, lags=BAR_SECONDS):
    """How periodic a song is at the bar: the largest normalised autocorrelation of its
    spectrogram over lags in `lags` seconds, and that lag.

    S : (n_freq, n_time) magnitudes; frame_seconds : seconds between columns (> 0);
    lags : (shortest, longest) lag searched, in seconds.
    Each frequency's log magnitude over time, its mean removed, is autocorrelated; the
    autocorrelations are summed over frequencies, divided by the overlap, and normalised by
    lag 0. Returns (r, lag_seconds): r is 1 for a spectrogram that repeats exactly at that
    lag and near 0 for noise.
    """
    S = _check(S)
    if not frame_seconds > 0:
        raise ValueError(f"frame_seconds must be positive, got {frame_seconds}")
    lo, hi = int(np.ceil(lags[0] / frame_seconds)), int(np.floor(lags[1] / frame_seconds))
    n = S.shape[1]
    hi = min(hi, n // 2)
    if lo < 1 or hi < lo:
        raise ValueError(f"a spectrogram of {n} columns {frame_seconds:g} s apart has no lag in "
                         f"{lags[0]:g}..{lags[1]:g} s with half the song to compare")
    X = np.log(S + 1e-6 * max(S.max(), 1e-12))
    X = X - X.mean(axis=1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(X, size, axis=1)
    ac = np.fft.irfft((f * f.conj()).real, size, axis=1)[:, :n].sum(axis=0)
    ac = ac / (n - np.arange(n))
    if ac[0] <= 0:
        return 0.0, float(lo * frame_seconds)
    r = ac[lo:hi + 1] / ac[0]
    k = int(np.argmax(r))
    return float(r[k]), float((lo + k) * frame_seconds)


def loudness_range(S, low=10, high=95):
    """The spread of a song's loudness in dB: the `high`-th minus the `low`-th percentile of
    each column's energy 10 log10(sum_f S^2) (EBU's loudness range takes 10 and 95).

    S : (n_freq, n_time) magnitudes. Returns dB (>= 0); silent columns count as 120 dB
    below the loudest.
    """
    S = _check(S)
    if not 0 <= low < high <= 100:
        raise ValueError(f"need 0 <= low < high <= 100, got {low}, {high}")
    e = (S ** 2).sum(axis=0)
    e = np.maximum(e, e.max() * 1e-12 if e.max() > 0 else 1e-300)
    db = 10 * np.log10(e)
    return float(np.percentile(db, high) - np.percentile(db, low))


def song_features(song, data_dir, output_dir):
    """{periodicity, bar_seconds, loudness_range_db} of a song's saved spectrogram; {} when it
    has none that checks out."""
    from dae import dataset, layout
    try:
        F, T, S, meta = dataset.load(layout.Paths(song, data_dir, output_dir))
    except UserError:
        return {}
    r, lag = periodicity(S, float(np.median(np.diff(T))))
    return {"periodicity": r, "bar_seconds": lag, "loudness_range_db": loudness_range(S)}
