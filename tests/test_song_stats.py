"""The song as the statistical unit (dae.stats.song_level and its parts), on data with a known answer."""
import numpy as np
import pytest

from dae import stats


def grid(n_songs, n_seeds):
    return np.repeat(np.arange(n_songs), n_seeds)


def test_a_shift_in_every_song_is_found():
    rng = np.random.default_rng(1)
    songs = grid(24, 3)
    song_effect = rng.normal(0, 0.2, 24)[songs]                    # songs differ, the shift does not
    b = rng.normal(1.0, 0.3, songs.size) + song_effect
    a = b - 0.25 + rng.normal(0, 0.05, songs.size)                 # A lower by 0.25 in every song
    r = stats.song_level(a, b, songs, lower_is_better=True)
    assert r["songs"] == 24 and r["pairs"] == 72
    assert r["p"] < 0.001 and r["a_wins"] == 24
    assert r["ci_high"] < 0 and r["ci_low"] < -0.25 < r["ci_high"]
    assert r["rank_biserial"] == pytest.approx(1.0) and r["dz"] > 2


def test_a_shift_in_one_song_only_is_not_called_general():
    rng = np.random.default_rng(2)
    songs = grid(12, 3)
    b = rng.normal(1.0, 0.1, songs.size)
    a = b + rng.normal(0, 0.1, songs.size)
    a[songs == 5] -= 5.0                                           # one song, a large shift
    r = stats.song_level(a, b, songs)
    pooled = stats.paired(a, b)                                    # seed pairs as if independent
    assert r["p"] > 0.05, r
    assert r["ci_low"] < 0 < r["ci_high"] or r["p"] > 0.05
    assert r["mean_diff"] < -0.3                                   # the one song drags the mean...
    assert r["share_between"] > 0.9                                # ...and the variance lies between songs
    assert pooled["mean_diff"] < -0.3


def test_hierarchical_bootstrap_is_wider_than_the_seed_bootstrap_when_songs_differ():
    rng = np.random.default_rng(3)
    songs = grid(10, 5)
    d = rng.normal(0, 1.0, 10)[songs] + rng.normal(0, 0.1, songs.size)
    lo, hi = stats.hierarchical_bootstrap(d, songs)
    lo_naive, hi_naive = stats.bootstrap_ci(d)
    assert hi - lo > 0.9 * (hi_naive - lo_naive)
    m = np.array([d[songs == s].mean() for s in range(10)])
    assert lo < m.mean() < hi
    # with one seed per song it is the plain bootstrap of the song means (same resampling of songs)
    one = grid(30, 1)
    x = rng.normal(0, 1, 30)
    lo1, hi1 = stats.hierarchical_bootstrap(x, one, seed=4)
    lo2, hi2 = stats.bootstrap_ci(x, seed=5)
    assert abs((hi1 - lo1) - (hi2 - lo2)) < 0.15 * (hi2 - lo2)


def test_hierarchical_bootstrap_covers_the_true_mean():
    rng = np.random.default_rng(6)
    covered = 0
    for _ in range(60):
        songs = grid(15, 3)
        d = 0.3 + rng.normal(0, 0.5, 15)[songs] + rng.normal(0, 0.3, songs.size)
        lo, hi = stats.hierarchical_bootstrap(d, songs, n_boot=2000, seed=int(rng.integers(1 << 30)))
        covered += lo <= 0.3 <= hi
    assert 48 <= covered <= 60          # nominal 95%: about 57 of 60; a CI of the seeds alone covers far less


def test_variance_components_recover_known_variances():
    rng = np.random.default_rng(7)
    songs = grid(400, 4)
    x = rng.normal(0, 2.0, 400)[songs] + rng.normal(0, 1.0, songs.size)
    between, within, share = stats.variance_components(x, songs)
    assert between == pytest.approx(4.0, rel=0.15)
    assert within == pytest.approx(1.0, rel=0.1)
    assert share == pytest.approx(0.8, abs=0.04)
    # unequal seeds per song: still unbiased for the within part
    keep = rng.random(songs.size) > 0.3
    _, within2, _ = stats.variance_components(x[keep], songs[keep])
    assert within2 == pytest.approx(1.0, rel=0.12)
    assert np.isnan(stats.variance_components(x[:4], songs[:4])[0])   # one song: no between-song variance


def test_wilcoxon_matches_the_exact_distribution_and_names_its_effect():
    p, r = stats.wilcoxon([1, 2, 3, 4, 5, 6])        # all positive, n = 6: exact p = 2 / 2^6
    assert p == pytest.approx(2 / 64)
    assert r == 1.0
    p, r = stats.wilcoxon([1, -2, 3, -4])
    assert p > 0.5 and r == pytest.approx((1 + 3 - 2 - 4) / 10)
    assert stats.wilcoxon([0, 0]) == (1.0, 0.0)


def test_song_level_refuses_mismatched_input():
    with pytest.raises(ValueError, match="one length"):
        stats.song_level([1, 2], [1, 2, 3], [0, 0])


def test_figures_stay_readable_at_24_songs(tmp_path):
    """Past a few songs the δ curves are one pooled panel per rule (not a panel per song), the
    turning angles carry no legend of songs, and the forest plot has a row per song."""
    import imageio.v3 as iio
    from dae import report
    curve = {"mean": [0.1, 0.2, 0.3], "std": [0.01, 0.02, 0.03], "count": 5}
    rng = np.random.default_rng(0)
    results = [{"status": "ok", "variant": v, "song": f"song{i:02d}", "seed": seed, "window": 0.5, "latent": 3,
                "turning_angle": 40.0 - 3 * (v == "R-F") + rng.normal(), "delta_x_1": 0.02 + rng.normal(0, 0.001),
                "curves": {"x": curve, "o": curve}}
               for i in range(24) for seed in (1, 2, 3) for v in ("R", "R-F")]
    delta, angles = report.figures(tmp_path, results, ["R", "R-F"])
    few = report.figures(tmp_path / "few", [r for r in results if r["song"] in ("song00", "song01")], ["R", "R-F"])
    width = iio.imread(delta).shape[1]
    assert width < 0.5 * iio.imread(few[0]).shape[1]            # 1 panel against 3 (2 songs and pooled)
    forest = report.forest(tmp_path, results, ["R", "R-F"], "turning_angle", "conditioning smooth the path")
    assert iio.imread(forest).shape[0] > 24 * 20                  # a row per song


@pytest.mark.parametrize("step1, words", [(-0.01, "holds (no difference shown)"),
                                          (+0.01, "moot: δ at step 1 is higher; at step 29 no difference shown")])
def test_the_claims_table_answers_each_claim_from_the_numbers(step1, words):
    from dae import report
    rng = np.random.default_rng(7)
    results = []
    for i in range(24):
        for seed in (1, 2, 3):
            base = {"turning_angle": 40 + rng.normal(0, 3), "delta_x_1": 0.05 + rng.normal(0, 0.002),
                    "delta_x_29": 0.3 + rng.normal(0, 0.01), "bce": 0.08}
            for v in ("R", "R-F"):
                r = {"status": "ok", "variant": v, "song": f"song{i:02d}", "seed": seed, "window": 0.5, "latent": 3,
                     **base}
                if v == "R-F":
                    r = r | {"turning_angle": base["turning_angle"] - 5 + rng.normal(0, 0.5),
                             "delta_x_1": base["delta_x_1"] + step1 + rng.normal(0, 0.001),
                             "delta_x_29": base["delta_x_29"] + rng.normal(0, 0.01)}
                results.append(r)
    lines = report.claims_markdown(results, ["R", "R-F"])
    smoother, first, only = lines[2:5]
    assert smoother.endswith("**holds** |") and "| 24 | 24 |" in smoother
    assert first.endswith("**holds** |" if step1 < 0 else "**reversed** |")
    assert only.endswith(f"**{words}** |"), only
