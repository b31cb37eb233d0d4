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
