"""Paired statistics, forecast skill and the report's words, on inputs with known answers."""
import math

import numpy as np
import pytest

from dae import stats
from dae.report import compare, sentence
from dae.forecast import KNNField, divergence


@pytest.mark.parametrize("wins, losses, p", [
    (9, 0, 2 / 512),                                   # the "9 of 9 pairs (p = 0.004)"
    (0, 9, 2 / 512),
    (5, 1, 2 * (1 + 6) / 64),
    (7, 3, 2 * (1 + 10 + 45 + 120) / 1024),
    (1, 1, 1.0),                                       # 2 * 3/4 capped at 1
    (3, 0, 2 / 8),
    (0, 0, 1.0),                                       # no untied pairs: no evidence
])
def test_sign_test_exact_small_n_by_hand(wins, losses, p):
    assert stats.sign_test(wins, losses) == pytest.approx(p, rel=1e-12)


def test_sign_test_agrees_with_scipy_binomtest():
    from scipy.stats import binomtest
    for n in range(1, 16):
        for k in range(n + 1):
            assert stats.sign_test(k, n - k) == pytest.approx(binomtest(k, n, 0.5).pvalue, rel=1e-9), (k, n)


def test_bootstrap_interval_covers_a_known_shift():
    # paired data whose true mean difference is 0.5: the 95% interval should cover it
    # in about 95% of data sets (percentile bootstrap, n = 30: a little under)
    shift, covered, excludes_zero = 0.5, 0, 0
    for rep in range(200):
        rng = np.random.default_rng(rep)
        base = rng.normal(size=30)
        a, b = base + shift + rng.normal(scale=0.8, size=30), base
        lo, hi = stats.bootstrap_ci(a - b, n_boot=2000, seed=rep)
        covered += lo <= shift <= hi
        excludes_zero += lo > 0
    assert 0.88 <= covered / 200 <= 0.99
    assert excludes_zero / 200 > 0.9                 # and it sees that the shift is not zero


def test_bootstrap_degenerate_inputs():
    assert stats.bootstrap_ci([2.0]) == (2.0, 2.0)
    assert all(math.isnan(x) for x in stats.bootstrap_ci([]))
    assert stats.bootstrap_ci([1.0, np.nan, 1.0]) == (1.0, 1.0)


def test_paired_counts_wins_by_the_metrics_direction():
    a = [1.0, 2.0, 3.0, 4.0, np.nan]
    b = [2.0, 2.0, 1.0, 5.0, 1.0]
    low = stats.paired(a, b, lower_is_better=True)
    assert (low["n"], low["a_wins"], low["b_wins"], low["ties"]) == (4, 2, 1, 1)
    assert low["mean_diff"] == pytest.approx((-1 + 0 + 2 - 1) / 4)
    high = stats.paired(a, b, lower_is_better=False)
    assert (high["a_wins"], high["b_wins"]) == (1, 2)
    assert low["p"] == stats.sign_test(2, 1) == 1.0


def test_skill_convention_and_values():
    assert stats.skill(0.5, 1.0) == pytest.approx(0.5)
    assert stats.skill(2.0, 1.0) == pytest.approx(-1.0)
    assert stats.skill(0.0, 0.0) == 0.0                # both exact: neither is better
    assert stats.skill(1e-15, 3e-16) == 0.0            # round-off counts as exact, not a ratio of noise
    assert stats.skill(0.1, 0.0) == -np.inf            # the baseline is exact, the model is not


def test_skill_is_zero_on_a_path_the_baseline_predicts_exactly():
    # a straight line at constant speed: constant velocity is exact, and so is KNN
    # (every displacement is the same), so the skill must be exactly 0, not 1 - noise/noise
    Z = np.outer(np.arange(200), [0.3, -0.2, 0.1]) + [1.0, 2.0, 3.0]
    Zs = (Z - Z.min(0)) / (Z.max(0) - Z.min(0))
    origins = np.arange(1, 160, 10)
    base = stats.constant_velocity(Zs, origins, 30)
    knn = divergence(Zs, KNNField(Zs, 5, exclusion=12), origins, 30)
    assert np.all(base < 1e-12) and np.all(knn < 1e-9)
    s = stats.skill(knn.mean(axis=0)[1:], base.mean(axis=0)[1:], zero=1e-9)
    assert np.all(s == 0.0)


def test_constant_velocity_error_on_a_circle_by_hand():
    theta = 2 * np.pi / 50
    t = np.arange(300) * theta
    Z = np.c_[np.cos(t), np.sin(t)]
    d = stats.constant_velocity(Z, np.array([5, 60]), 3)
    # one step: |2 z_t - z_{t-1} - z_{t+1}| = 2 - 2 cos θ (the chord's curvature, radial)
    assert d[:, 0] == pytest.approx([0, 0])
    assert d[:, 1] == pytest.approx([2 - 2 * np.cos(theta)] * 2)
    # i steps: |(1 + i) z_t - i z_{t-1} - z_{t+i}|, computed on the unit circle
    for i in (2, 3):
        expect = abs((1 + i) - i * np.exp(-1j * theta) - np.exp(1j * i * theta))
        assert d[0, i] == pytest.approx(expect)
    with pytest.raises(ValueError):
        stats.constant_velocity(Z, np.array([0]), 3)   # no z_{t-1} before the first point


def test_pooled_curve_equals_the_curve_of_all_initial_conditions():
    rng = np.random.default_rng(3)
    groups = [rng.random((n, 31)) for n in (7, 12, 4)]
    mean, se = stats.pooled_curve([g.mean(0) for g in groups], [g.std(0) for g in groups],
                                  [[len(g)] * 31 for g in groups])
    every = np.concatenate(groups)
    np.testing.assert_allclose(mean, every.mean(0))
    np.testing.assert_allclose(se, every.std(0) / np.sqrt(len(every)))


def fake_results(n, smoother, delta1_lower):
    """n (song, seed) pairs of R and R-F results: R-F smoother in `smoother` of them,
    with a lower exclusion-rule δ at step 1 in `delta1_lower` of them."""
    out = []
    keys = ["bce", "trustworthiness", "growth_x", "growth_o"] + \
        [f"{m}_{r}_{h}" for m in ("delta", "skill") for r in ("x", "o") for h in (1, 5, 10, 29)]
    for i in range(n):
        for v in ("R", "R-F"):
            r = {"status": "ok", "variant": v, "song": f"s{i % 3}", "seed": i, "window": 0.5, "latent": 3,
                 **{k: 1.0 for k in keys}}
            rf = v == "R-F"
            r["turning_angle"] = 40.0 - (5 if rf and i < smoother else 0) + (5 if rf and i >= smoother else 0)
            r["delta_x_1"] = 0.02 + (-0.01 if rf and i < delta1_lower else 0.01 if rf else 0)
            out.append(r)
    return out


def test_summary_words_come_from_the_numbers():
    table = compare(fake_results(9, 9, 2), "R-F", "R")
    words = sentence("R-F", "R", table)
    assert "R-F smoother than R in 9 of 9 pairs (p = 0.004)" in words
    assert "δ at step 1 lower in 2 of 9 under the exclusion rule (p = 0.180)" in words
    assert "With p < 0.05 (sign test): mean turning angle (R-F better)." in words
    words = sentence("R-F", "R", compare(fake_results(6, 3, 3), "R-F", "R"))
    assert "R-F smoother than R in 3 of 6 pairs (p = 1.000)" in words
    assert "No difference reaches p < 0.05" in words
