"""Sections found from the music: novelty on a self-similarity matrix (Foote, 2000).

Small numeric functions in the style of librosa's: one job each, shapes and units in
the docstring, input checked at the door. `boundaries` is what the pictures use: the
times (s) where the music changes, from a spectrogram or from the path itself.
`hit_rate` scores found boundaries against known ones within a tolerance.
"""
import numpy as np

FRAME_SECONDS = 0.25     # features are averaged over frames this long before the self-similarity
KERNEL_SECONDS = 6.0     # the checkerboard kernel compares this much music before a time with as much after it
MIN_GAP_SECONDS = 8.0    # no two boundaries closer than this (and none this close to either end)
THRESHOLD = 0.5          # a boundary's novelty is at least this share of the song's largest
FLOOR = 0.02             # and at least this much (a bar repeated for a minute reaches about 0.011)


def pooled(X, t, frame_seconds=FRAME_SECONDS):
    """Average the rows of X over frames of `frame_seconds`.

    X : (n, d) features, one row per time; t : (n,) their times (s), increasing.
    Returns (P, tf): P (m, d) the mean of each frame that holds a row, tf (m,) each
    frame's mean time (s).
    """
    X, t = np.asarray(X, dtype=np.float64), np.asarray(t, dtype=np.float64)
    if X.ndim != 2 or len(X) < 2 or t.shape != (len(X),):
        raise ValueError(f"X must be (n, d) with n >= 2 and t (n,), got X {X.shape} and t {t.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(t)) and np.all(np.diff(t) > 0)):
        raise ValueError("X must be finite and t finite and increasing")
    if not frame_seconds > 0:
        raise ValueError(f"frame_seconds must be positive, got {frame_seconds}")
    idx = np.floor((t - t[0]) / frame_seconds).astype(np.int64)
    _, idx = np.unique(idx, return_inverse=True)
    count = np.bincount(idx).astype(np.float64)
    P = np.stack([np.bincount(idx, weights=X[:, k]) for k in range(X.shape[1])], axis=1) / count[:, None]
    return P, np.bincount(idx, weights=t) / count


def self_similarity(P):
    """Cosine similarity between every two rows of P after each column is standardised.

    P : (m, d). Returns (m, m) in [-1, 1]; 1 on the diagonal (0 for a row with no spread).
    """
    P = np.asarray(P, dtype=np.float64)
    P = (P - P.mean(axis=0)) / np.maximum(P.std(axis=0), 1e-12)
    norm = np.linalg.norm(P, axis=1, keepdims=True)
    P = P / np.where(norm > 0, norm, 1.0)
    return P @ P.T


def checkerboard(half):
    """Foote's Gaussian-tapered checkerboard kernel: (2 half, 2 half), +1 where both times lie
    on the same side of the centre, -1 across it, tapered by a Gaussian (sigma = half / 2), sum
    of |values| 1. half : frames on each side (>= 1)."""
    if int(half) != half or half < 1:
        raise ValueError(f"half must be a whole number of frames >= 1, got {half}")
    u = np.arange(-half, half) + 0.5
    g = np.exp(-0.5 * (u / (half / 2.0)) ** 2)
    K = np.outer(np.sign(u) * g, np.sign(u) * g)
    return K / np.abs(K).sum()


def novelty(R, half):
    """How much the music changes at each frame: the checkerboard kernel slid along the
    diagonal of the self-similarity matrix R (m, m). Returns (m,) >= 0, 0 within `half`
    frames of either end (where the kernel would reach past the song)."""
    R = np.asarray(R, dtype=np.float64)
    m = len(R)
    K = checkerboard(half)
    out = np.zeros(m)
    for i in range(half, m - half + 1):
        out[i] = np.sum(K * R[i - half:i + half, i - half:i + half])
    return np.maximum(out, 0.0)


def peaks(curve, times, min_gap_seconds=MIN_GAP_SECONDS, threshold=THRESHOLD, floor=FLOOR):
    """Times (s) of the peaks of a novelty curve: each the highest point within
    `min_gap_seconds` either side, at least `threshold` x the curve's largest value and at
    least `floor`, and at least `min_gap_seconds` from either end. curve, times : (m,).
    Returns (k,) increasing."""
    curve, times = np.asarray(curve, dtype=np.float64), np.asarray(times, dtype=np.float64)
    if curve.shape != times.shape or curve.ndim != 1:
        raise ValueError(f"curve and times must be (m,) each, got {curve.shape} and {times.shape}")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    top = curve.max(initial=0.0)
    if top <= 0:
        return np.zeros(0)
    found = []
    for i in np.argsort(-curve, kind="stable"):
        if curve[i] < max(threshold * top, floor):
            break
        if times[i] - times[0] < min_gap_seconds or times[-1] - times[i] < min_gap_seconds:
            continue
        if all(abs(times[i] - f) >= min_gap_seconds for f in found):
            found.append(times[i])
    return np.sort(np.array(found))


def boundaries(X, t, kernel_seconds=KERNEL_SECONDS, min_gap_seconds=MIN_GAP_SECONDS, threshold=THRESHOLD,
               floor=FLOOR, frame_seconds=FRAME_SECONDS):
    """Where the music changes: novelty on the self-similarity of X over time.

    X : (n, d) features over time, e.g. a spectrogram's log magnitudes transposed or the
    path itself; t : (n,) their times (s), increasing. kernel_seconds : how much music
    (s) either side of a time is compared; min_gap_seconds, threshold, floor : as `peaks`.
    Returns the boundaries' times (s), increasing, none within min_gap_seconds of either end;
    empty for music that does not change (or is shorter than two gaps).
    """
    if not kernel_seconds > 0:
        raise ValueError(f"kernel_seconds must be positive, got {kernel_seconds}")
    P, tf = pooled(X, t, frame_seconds)
    half = max(1, int(round(kernel_seconds / frame_seconds)))
    if len(P) < 2 * half + 1:
        return np.zeros(0)
    return peaks(novelty(self_similarity(P), half), tf, min_gap_seconds, threshold, floor)


def spectrogram_features(S):
    """A spectrogram's columns as features for `boundaries`: log(S + 1e-4 max S), (n_time, n_freq).
    S : (n_freq, n_time) magnitudes >= 0."""
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2 or not np.all(np.isfinite(S)) or np.any(S < 0):
        raise ValueError(f"S must be a finite (n_freq, n_time) magnitude spectrogram >= 0, got shape {S.shape}")
    return np.log(S + 1e-4 * max(S.max(), 1e-12)).T


def hit_rate(found, truth, tolerance=1.0):
    """How well found boundaries match known ones: (recall, precision), each matched one to
    one within `tolerance` s. recall: the share of true boundaries found; precision: the
    share of found ones that are true. found, truth : (k,) times (s). An empty side gives
    nan for the share it divides by."""
    found, truth = np.sort(np.asarray(found, dtype=np.float64)), np.sort(np.asarray(truth, dtype=np.float64))
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0 s, got {tolerance}")
    pairs = sorted((abs(f - g), i, j) for i, f in enumerate(found) for j, g in enumerate(truth)
                   if abs(f - g) <= tolerance)
    used_f, used_t = set(), set()
    for _, i, j in pairs:
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
    hits = len(used_t)
    return (hits / len(truth) if len(truth) else float("nan"), hits / len(found) if len(found) else float("nan"))
