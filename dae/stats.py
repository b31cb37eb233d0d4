"""Paired comparisons of two variants across (song, seed) pairs, and forecast skill.

Everything here is plain numpy / math so that its answers can be checked by
hand: the sign test is exact (binomial), the bootstrap is a seeded percentile
bootstrap of the mean paired difference.
"""
import math

import numpy as np

ZERO = 1e-12  # distances below this (in the [0, 1]-scaled path) count as exactly zero


def sign_test(wins, losses):
    """Exact two-sided sign-test p-value for `wins` against `losses` (ties left out).

    p = min(1, 2 * P(X <= min(wins, losses))) with X ~ Binomial(wins + losses, 1/2);
    1.0 when there are no untied pairs.
    """
    n = int(wins) + int(losses)
    if n == 0:
        return 1.0
    k = min(int(wins), int(losses))
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def bootstrap_ci(diffs, level=0.95, n_boot=10000, seed=0):
    """Percentile bootstrap confidence interval of the mean of `diffs` (1-D).

    Returns (low, high); (nan, nan) for no data, (d, d) for a single value.
    """
    d = np.asarray(diffs, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, (n_boot, d.size))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def paired(a, b, lower_is_better=True, seed=0):
    """Compare variant A's values `a` with B's `b`, paired element by element.

    Returns a dict: n (pairs with both values finite), mean difference a - b,
    its 95% bootstrap CI, a_wins / b_wins / ties (a win is the better value by
    the metric's direction) and the exact sign-test p-value.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    better = -d if lower_is_better else d
    a_wins, b_wins = int(np.sum(better > 0)), int(np.sum(better < 0))
    lo, hi = bootstrap_ci(d, seed=seed)
    return {"n": int(d.size), "mean_diff": float(d.mean()) if d.size else float("nan"), "ci_low": lo,
            "ci_high": hi, "a_wins": a_wins, "b_wins": b_wins, "ties": int(d.size - a_wins - b_wins),
            "p": sign_test(a_wins, b_wins)}


def skill(delta_model, delta_baseline, zero=ZERO):
    """Forecast skill 1 - δ_model / δ_baseline, elementwise.

    Convention when the baseline is exact (δ_baseline <= `zero`): the skill is 0
    if the model is exact too (neither beats the other), and -inf if it is not.
    """
    m = np.asarray(delta_model, dtype=np.float64)
    b = np.asarray(delta_baseline, dtype=np.float64)
    m = np.where(m <= zero, 0.0, m)
    exact = b <= zero
    with np.errstate(divide="ignore", invalid="ignore"):
        s = 1.0 - m / np.where(exact, 1.0, b)
    return np.where(exact, np.where(m == 0, 0.0, -np.inf), s)


def constant_velocity(Z, origins, steps):
    """Baseline forecast ẑ_{t+i} = z_t + i (z_t - z_{t-1}) and its distance to the true path.

    Z : (N, d) path (already scaled); origins : (M,) start indices, each >= 1 and
    <= N - 1 - steps. Returns δ (M, steps + 1) with δ[:, 0] = 0, as forecast.divergence.
    """
    Z = np.asarray(Z, dtype=np.float64)
    origins = np.asarray(origins, dtype=int)
    if origins.size == 0 or origins.min() < 1 or origins.max() + steps > len(Z) - 1:
        raise ValueError(f"origins must lie in 1..{len(Z) - 1 - steps}")
    i = np.arange(steps + 1)
    v = Z[origins] - Z[origins - 1]                                  # (M, d)
    forecast = Z[origins][:, None, :] + i[None, :, None] * v[:, None, :]
    truth = Z[origins[:, None] + i[None, :]]
    return np.linalg.norm(forecast - truth, axis=2)


def pooled_curve(means, stds, counts):
    """Pool per-trial mean curves (T, S) with their stds and counts into one
    mean curve and its standard error over every underlying curve."""
    means, stds = np.asarray(means, dtype=np.float64), np.asarray(stds, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64).reshape(len(means), -1)
    n = counts.sum(axis=0)
    mean = (counts * means).sum(axis=0) / n
    var = (counts * (stds ** 2 + means ** 2)).sum(axis=0) / n - mean ** 2
    return mean, np.sqrt(np.maximum(var, 0) / n)


def fmt_p(p):
    """A p-value as words use it: 3 decimals, or '< 0.001'."""
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


# ---------------------------------------------------------------- the song as the unit

def _by_song(diffs, songs):
    """{song: finite diffs (1-D float64)} in first-seen order, songs without a finite diff left out."""
    d = np.asarray(diffs, dtype=np.float64)
    songs = np.asarray(songs)
    if d.shape != songs.shape or d.ndim != 1:
        raise ValueError(f"diffs and songs must be 1-D of one length, got {d.shape} and {songs.shape}")
    out = {}
    for s in dict.fromkeys(songs.tolist()):
        x = d[(songs == s) & np.isfinite(d)]
        if x.size:
            out[s] = x
    return out


def wilcoxon(song_means):
    """Two-sided Wilcoxon signed-rank p-value of per-song mean differences (1-D) against 0,
    with the statistic's rank-biserial correlation (W+ - W-) / (W+ + W-) in [-1, 1] as its
    effect size. Zeros are left out (Wilcoxon's rule); (1.0, 0.0) when nothing is left."""
    from scipy import stats as sps
    d = np.asarray(song_means, dtype=np.float64)
    d = d[np.isfinite(d) & (np.abs(d) > ZERO)]
    if d.size == 0:
        return 1.0, 0.0
    ranks = sps.rankdata(np.abs(d))
    w_plus, w_minus = ranks[d > 0].sum(), ranks[d < 0].sum()
    r = float((w_plus - w_minus) / (w_plus + w_minus))
    if d.size == 1:
        return 1.0, r
    return float(sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue), r


def hierarchical_bootstrap(diffs, songs, level=0.95, n_boot=10000, seed=0):
    """Percentile CI of the mean over songs of each song's mean paired difference, by a
    two-level bootstrap: resample songs with replacement, then each drawn song's seeds with
    replacement. diffs, songs : 1-D, one (song, seed) pair each. Returns (low, high);
    (nan, nan) for no data."""
    by = _by_song(diffs, songs)
    if not by:
        return float("nan"), float("nan")
    n = np.array([len(x) for x in by.values()])
    padded = np.full((len(by), n.max()), np.nan)
    for i, x in enumerate(by.values()):
        padded[i, :len(x)] = x
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    step = max(1, 2_000_000 // (len(by) * n.max()))     # bootstrap draws per block, to bound memory
    for a in range(0, n_boot, step):
        b = min(n_boot, a + step)
        pick = rng.integers(0, len(by), (b - a, len(by)))                          # songs
        within = np.floor(rng.random((b - a, len(by), n.max())) * n[pick][..., None]).astype(int)  # seeds
        vals = padded[pick[..., None], within]
        valid = np.arange(n.max()) < n[pick][..., None]
        means[a:b] = (np.where(valid, vals, 0).sum(-1) / n[pick]).mean(-1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def variance_components(values, songs):
    """Between-song and between-seed (within-song) variance of `values` (1-D, one per (song, seed)),
    by the one-way random-effects ANOVA estimator for unequal seeds per song. Returns
    (between, within, share of the total that lies between songs); nans when there are fewer
    than two songs or no song has two seeds."""
    by = _by_song(values, songs)
    k = len(by)
    n = np.array([len(x) for x in by.values()], dtype=float)
    total = n.sum()
    if k < 2 or total <= k:
        return float("nan"), float("nan"), float("nan")
    grand = np.concatenate(list(by.values())).mean()
    msb = sum(len(x) * (x.mean() - grand) ** 2 for x in by.values()) / (k - 1)
    msw = sum(((x - x.mean()) ** 2).sum() for x in by.values()) / (total - k)
    n0 = (total - (n ** 2).sum() / total) / (k - 1)
    between = max(0.0, (msb - msw) / n0)
    return float(between), float(msw), float(between / (between + msw)) if between + msw > 0 else float("nan")


def song_level(a, b, songs, lower_is_better=True, seed=0):
    """Compare variant A's values `a` with B's `b` (paired by (song, seed)), the song as the unit.

    Each song's paired differences a - b are averaged over its seeds; the song means are the
    sample. Returns a dict: songs, pairs, mean_diff (mean of the song means), ci_low / ci_high
    (95% `hierarchical_bootstrap`), a_wins / b_wins / ties (songs whose mean is better for A /
    for B), p (two-sided `wilcoxon` of the song means), rank_biserial (its effect size, signed
    so that > 0 favours A), dz (mean / sd of the song means, signed likewise), between / within
    / share_between (`variance_components` of the differences) and means ({song: mean}).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must be of one length, got {a.shape} and {b.shape}")
    by = _by_song(a - b, songs)
    m = np.array([x.mean() for x in by.values()])
    sign = -1.0 if lower_is_better else 1.0
    better = sign * m
    p, r = wilcoxon(m)
    lo, hi = hierarchical_bootstrap(a - b, songs, seed=seed)
    between, within, share = variance_components(a - b, songs)
    sd = m.std(ddof=1) if m.size > 1 else float("nan")
    return {"songs": int(m.size), "pairs": int(sum(len(x) for x in by.values())),
            "mean_diff": float(m.mean()) if m.size else float("nan"), "ci_low": lo, "ci_high": hi,
            "a_wins": int(np.sum(better > ZERO)), "b_wins": int(np.sum(better < -ZERO)),
            "ties": int(np.sum(np.abs(better) <= ZERO)), "p": p, "rank_biserial": sign * r,
            "dz": float(sign * m.mean() / sd) if m.size > 1 and sd > 0 else float("nan"),
            "between": between, "within": within, "share_between": share,
            "means": dict(zip(by, m.tolist()))}
