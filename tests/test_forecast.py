"""Forecasting in the embedding space: KNN field, exclusion, divergence, latent models."""
import numpy as np
import pytest

from dae import UserError, latent
from dae.forecast import (KNNField, divergence, divergence_loop, growth_rate, rollout, turning_angle,
                          unit_scale)


def circle(n=600, omega=2 * np.pi / 100, radius=1.0):
    """Points on a circle turning at constant speed: omega radians per step."""
    a = omega * np.arange(n)
    return np.stack([radius * np.cos(a), radius * np.sin(a), np.zeros(n)], axis=1)


def random_walk(n=400, d=3, seed=0):
    return np.cumsum(np.random.default_rng(seed).standard_normal((n, d)), axis=0)


def test_knn_forecast_follows_a_known_circular_field():
    omega = 2 * np.pi / 100
    Z = circle(omega=omega)
    start = np.array([np.cos(0.37), np.sin(0.37), 0.0])        # on the circle, between library points
    path = rollout(KNNField(Z, 5), start, 200)
    radius = np.linalg.norm(path[:, :2], axis=1)
    assert np.abs(radius - 1).max() < 0.02                      # stays on the circle
    angle = np.unwrap(np.arctan2(path[:, 1], path[:, 0]))
    np.testing.assert_allclose(np.diff(angle), omega, rtol=0.02)  # at the field's speed
    assert angle[-1] - angle[0] == pytest.approx(200 * omega, rel=0.01)


def test_weights_are_inverse_distance_and_zero_distance_is_exact():
    Z = np.array([[0.0, 0, 0], [1, 0, 0], [3, 0, 0], [3, 1, 0]])
    field = KNNField(Z, k=2)
    # query at x = 0.5: neighbours 0 (d 0.5, v = (1,0,0)) and 1 (d 0.5, v = (2,0,0)): equal weights
    np.testing.assert_allclose(field(np.array([[0.5, 0, 0]])), [[1.5, 0, 0]])
    # query at x = 0.25: weights 1/0.25 and 1/0.75, normalised: 0.75 and 0.25
    np.testing.assert_allclose(field(np.array([[0.25, 0, 0]])), [[0.75 * 1 + 0.25 * 2, 0, 0]])
    # a query on a library point uses that point's displacement only
    np.testing.assert_allclose(field(np.array([[1.0, 0, 0]])), [[2, 0, 0]])


def test_exclusion_never_uses_an_excluded_index():
    Z = random_walk(300)
    radius = 22
    field = KNNField(Z, 5, exclusion=radius)
    used = []
    original = field.neighbours

    def spy(q, origin=None):
        idx, dist = original(q, origin)
        used.append(np.abs(idx - np.asarray(origin).reshape(-1, 1)))
        return idx, dist
    field.neighbours = spy
    origins = np.arange(0, 300 - 31, 7)
    divergence(Z, field, origins, 30)
    rollout(field, Z[150], 50, origin=150)
    gaps = np.concatenate([u.ravel() for u in used])
    assert gaps.min() > radius
    assert len(used) == 30 + 50


def test_original_rule_drops_the_nearest_neighbour():
    Z = random_walk(100)
    idx, _ = KNNField(Z, 5, drop_nearest=True).neighbours(Z[40][None])
    assert 40 not in idx[0] and len(idx[0]) == 5
    idx_all, _ = KNNField(Z, 6).neighbours(Z[40][None])
    assert list(idx[0]) == list(idx_all[0][1:])


@pytest.mark.parametrize("exclusion, drop", [(22, False), (0, False), (None, True), (None, False)])
def test_batched_divergence_equals_the_per_point_loop(exclusion, drop):
    Z, _, _ = unit_scale(random_walk(500, seed=3))
    origins = np.arange(0, 500 - 31, 10)
    batched = divergence(Z, KNNField(Z, 5, exclusion=exclusion, drop_nearest=drop), origins, 30)
    loop = divergence_loop(Z, origins, 30, 5, exclusion, drop)
    np.testing.assert_allclose(batched, loop, rtol=0, atol=1e-9)
    assert np.all(batched[:, 0] == 0) and batched[:, 1:].mean() > 0


def test_divergence_rejects_initial_conditions_without_a_true_future():
    Z = random_walk(100)
    with pytest.raises(UserError, match="initial conditions must lie in 0..69"):
        divergence(Z, KNNField(Z, 5), np.array([0, 75]), 30)


def test_growth_rate_recovers_a_known_exponent():
    steps = np.arange(31)
    delta = np.outer([0.5, 1.0, 2.0], np.exp(0.3 * steps))
    slope, _ = growth_rate(delta, 1, 10)
    assert slope == pytest.approx(0.3, abs=1e-12)


def test_turning_angle_of_known_paths():
    assert turning_angle(circle(omega=np.radians(10))) == pytest.approx(10.0, abs=1e-6)
    assert turning_angle(np.outer(np.arange(10.0), [1, 2, 3])) == pytest.approx(0.0, abs=1e-6)
    zigzag = np.array([[0, 0], [1, 0], [1, 1], [2, 1], [2, 2]], float)
    assert turning_angle(zigzag) == pytest.approx(90.0)


def test_held_out_split_uses_only_the_tail():
    n, history = 200, 20
    train, test, ranges = latent.split(n, history, scheme="end")
    s, = (first for first, _ in ranges)
    assert s == 160
    assert (train + 1).max() < s                       # training targets z_{t+1} before the split
    assert (test - history + 1).min() >= s              # held-out inputs start after it
    assert test.max() + 1 == n - 1


def test_held_out_blocks_spread_across_the_song_and_no_sample_straddles_one():
    n, history = 1000, 20
    train, test, ranges = latent.split(n, history)
    assert len(ranges) == 5 and sum(b - a for a, b in ranges) == 200          # 20% in five blocks
    assert ranges[0][1] <= 0.2 * n and ranges[-1][1] == n                    # from the first fifth to the end
    held = np.zeros(n, bool)
    for a, b in ranges:
        held[a:b] = True
    for t in train:                                    # reads t-history+1 .. t, predicts t+1: all trained on
        assert not held[t - history + 1:t + 2].any()
    for t in test:                                     # all held out, within one block
        assert sum(a <= t - history + 1 and t + 1 < b for a, b in ranges) == 1
    size = 40                                          # what is lost: a history at each edge of a block
    assert len(test) == 5 * (size - history) and len(train) == (n - history) - 4 * (size + history) - size
    Z = np.stack([np.cos(np.arange(n) * 0.2), np.sin(np.arange(n) * 0.2), 0.1 * np.sin(np.arange(n) * 0.05)], 1)
    _, report = latent.train("mlp", Z, 1)
    Zs, _, _ = unit_scale(Z, report["lo"], report["hi"])
    V = np.diff(Zs, axis=0)
    t = latent.split(n, 2)[1]
    assert report["holdout"] == "blocks" and report["n_test"] == len(t)
    assert report["persistence"] == pytest.approx(latent.scores(V[t - 1], V[t]))
    assert report["lo"] == pytest.approx(Z[~held].min(axis=0)) and report["hi"] == pytest.approx(Z[~held].max(axis=0))


def test_latent_models_report_held_out_scores_beside_persistence():
    Z = np.stack([np.cos(np.arange(400) * 0.2), np.sin(np.arange(400) * 0.2), 0.1 * np.sin(np.arange(400) * 0.05)], 1)
    for kind, epochs in (("mlp", 3), ("lstm", 2)):
        model, report = latent.train(kind, Z, epochs, holdout="end")
        s, h = report["split_index"], report["history"]
        Zs, _, _ = unit_scale(Z, report["lo"], report["hi"])
        V = np.diff(Zs, axis=0)
        t = np.arange(s + max(h, 2) - 1, len(Z) - 1)
        assert report["n_test"] == len(t)
        expected = latent.scores(V[t - 1], V[t])          # persistence from the tail alone
        assert report["persistence"] == pytest.approx(expected)
        assert np.isfinite(report["held_out"]["mse"]) and -1 <= report["held_out"]["cosine"] <= 1
    assert report["held_out"]["cosine"] > 0.5            # the LSTM learned the rotation


def test_latent_training_shows_its_time_left(capsys):
    Z = np.stack([np.cos(np.arange(300) * 0.2), np.sin(np.arange(300) * 0.2), 0.1 * np.sin(np.arange(300) * 0.05)], 1)
    latent.train("mlp", Z, 3, verbose=2)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch")]
    assert [ln.split()[1] for ln in lines] == ["1/3", "2/3", "3/3"]
    assert all(" left " in ln and "elapsed" in ln for ln in lines) and "run 100%" in lines[-1]
    assert "0:00 left" in lines[-1]


def test_latent_rollout_follows_its_model():
    lo, hi = np.zeros(2), np.ones(2)

    class Constant:
        def predict_on_batch(self, x):
            return np.array([[0.1, -0.05]], dtype="float32")
    path = latent.rollout(latent.predictor(Constant(), "mlp", lo, hi), np.zeros((1, 2)), 10)
    np.testing.assert_allclose(path[-1], [1.0, -0.5], atol=1e-6)
    assert len(path) == 11


# ---------------------------------------------------------------- the default start point

def test_knn_mlp_and_lstm_default_to_one_start_point_for_every_path_length():
    """Before: KNN drew from 19..N-2, MLP and LSTM from 19..N-1: different for 1,530 of 2,800 lengths."""
    from dae import stages
    from dae.latent import LSTM_HISTORY
    checked = 0
    for n in range(3, 2803):
        # the (first, last) each method accepts, as forecast_knn.py and stages.forecast_latent pass them
        methods = {"knn": (0, n - 2), "mlp": (0, n - 1), "lstm": (LSTM_HISTORY - 1, n - 1)}
        if n < LSTM_HISTORY + 1:
            for first, last in methods.values():
                with pytest.raises(UserError, match="too short"):
                    stages.initial_condition(-1, first, last, 1337, n)
            continue
        for seed in (0, 1337):
            picked = {m: stages.initial_condition(-1, first, last, seed, n) for m, (first, last) in methods.items()}
            assert len(set(picked.values())) == 1, (n, seed, picked)
            ic = picked["knn"]
            assert all(first <= ic <= last for first, last in methods.values()), (n, ic)
            assert LSTM_HISTORY - 1 <= ic <= n - 2
            checked += 1
    assert checked == 2 * (2803 - LSTM_HISTORY - 1)


def test_the_default_start_covers_the_shared_range():
    from dae import stages
    lo, hi = stages.start_range(60)
    seen = {stages.initial_condition(-1, 0, 58, seed, 60) for seed in range(2000)}
    assert seen == set(range(lo, hi + 1)) and (lo, hi) == (19, 58)


def test_a_requested_start_is_checked_against_the_method_range():
    from dae import stages
    assert stages.initial_condition(5, 0, 58, 0, 60) == 5
    with pytest.raises(UserError, match=r"(?i)INITIAL_CONDITION=5 is out of range: choose an index in 19\.\.59"):
        stages.initial_condition(5, 19, 59, 0, 60)


# ---------------------------------------------------------------- arguments checked at the door

@pytest.mark.parametrize("call, words", [
    (lambda Z, f: rollout(f, Z[0], -1), "N_STEPS=-1 must be a whole number >= 0"),
    (lambda Z, f: rollout(f, Z[0], 2.5), "N_STEPS=2.5 must be a whole number"),
    (lambda Z, f: rollout(f, np.array([np.nan, 0.0]), 3), "one finite point"),
    (lambda Z, f: divergence(Z, f, np.array([0, 5]), 0), "N_STEPS=0 must be a whole number >= 1"),
    (lambda Z, f: growth_rate(np.ones((3, 31)), 1, 1), "needs 1 < 1"),
    (lambda Z, f: growth_rate(np.ones((3, 31)), 1, 40), "needs 1 < 40 <= 30"),
    (lambda Z, f: KNNField(Z, k=0), "K=0 must be a whole number >= 1"),
    (lambda Z, f: KNNField(np.vstack([Z, [[np.inf, 0]]])), "1 NaN or infinite values"),
    (lambda Z, f: unit_scale(np.zeros(5)), "(N, d) array, got shape (5,)"),
])
def test_bad_arguments_are_one_line_naming_the_value(call, words):
    a = np.linspace(0, 6 * np.pi, 120)
    Z = np.stack([np.cos(a), np.sin(a)], 1)
    field = KNNField(Z, k=3)
    with pytest.raises(UserError) as e:
        call(Z, field)
    assert words in str(e.value) and "\n" not in str(e.value)
