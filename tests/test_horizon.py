"""Multi-step conditioning: the H-step rollout loss, its invariances, and training with it."""
import numpy as np
import pytest

import keras
import tensorflow as tf

from conftest import changing_song, write_song
from dae.model import (ConditionedAutoencoder, build_decoder, build_encoder, build_forecaster, horizon_loss,
                       loss_terms, roll_forward)
from test_training import _train


def constant_velocity(l=4, d=2):
    """A known forecaster: v̂ = z_t - z_{t-1}."""
    inp = keras.Input((l, d))
    out = keras.layers.Lambda(lambda h: h[:, -1] - h[:, -2])(inp)
    return keras.Model(inp, out)


def circle(n, theta, radius=1.0, d=2):
    a = theta * np.arange(n)
    return np.stack([radius * np.cos(a), radius * np.sin(a)], axis=1).astype("float64")


def test_one_step_with_no_length_term_is_the_original_cosine_loss():
    rng = np.random.default_rng(0)
    z_hist = rng.normal(size=(7, 45, 3)).astype("float32")
    z_next = rng.normal(size=(7, 3)).astype("float32")
    v_hat = rng.normal(size=(7, 3)).astype("float32")
    x = rng.uniform(size=(7, 5, 4)).astype("float32")
    one_step = float(loss_terms(x, x, z_hist, z_next, v_hat)[1])
    got = float(horizon_loss(z_hist[:, -1], z_next[:, None], (z_hist[:, -1] + v_hat)[:, None], length_weight=0.0))
    assert got == pytest.approx(one_step, rel=1e-6)


def test_rollout_of_constant_velocity_goes_straight():
    Z = np.arange(10, dtype="float32")[:, None] * np.array([[0.3, -0.1]], dtype="float32")
    pred = roll_forward(constant_velocity(), tf.constant(Z[None, :4]), 5).numpy()[0]
    np.testing.assert_allclose(pred, Z[4:9], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("H, decay, length_weight", [(1, 1.0, 1.0), (5, 1.0, 1.0), (8, 0.7, 0.5)])
def test_loss_on_a_circle_with_a_constant_velocity_forecaster_equals_the_value_by_hand(H, decay, length_weight):
    theta, l = 0.2, 4
    Z = circle(l + H, theta, radius=3.0)
    z_hist = tf.constant(Z[None, :l], tf.float32)
    pred = roll_forward(constant_velocity(l), z_hist, H)
    got = float(horizon_loss(z_hist[:, -1], tf.constant(Z[None, l:], tf.float32), pred, decay, length_weight))
    # straight on along the last chord: the k-step prediction is k chords of angle theta, the truth the chord
    # of angle k theta; the angle between them is (k + 1) theta / 2, their lengths k sin(θ/2) : sin(kθ/2)
    k = np.arange(1, H + 1)
    per_step = (1 - np.cos((k + 1) * theta / 2)) + length_weight * np.log(k * np.sin(theta / 2)
                                                                         / np.sin(k * theta / 2)) ** 2
    w = decay ** (k - 1)
    assert got == pytest.approx(np.sum(w * per_step) / np.sum(w), rel=1e-4)


def test_scaling_the_whole_path_leaves_the_loss_unchanged():
    rng = np.random.default_rng(3)
    Z = np.cumsum(rng.normal(size=(4 + 6, 2)), axis=0)          # a random walk
    values = []
    for scale in (1.0, 1e-3, 250.0):
        z = tf.constant(scale * Z[None], tf.float32)
        pred = roll_forward(constant_velocity(4), z[:, :4], 6)
        values.append(float(horizon_loss(z[:, 3], z[:, 4:], pred, 0.9, 1.0)))
    np.testing.assert_allclose(values, values[0], rtol=1e-4)
    # and a path shrunk towards a point is not rewarded: the loss of a collapsed prediction is the worst
    z = tf.constant(Z[None], tf.float32)
    collapsed = tf.repeat(z[:, 3:4], 6, axis=1)
    assert float(horizon_loss(z[:, 3], z[:, 4:], collapsed)) > values[0]


def test_chunked_h_step_terms_equal_each_sample_rolled_out_on_its_own():
    rng = np.random.default_rng(1)
    frames = rng.uniform(size=(120, 20)).astype("float32")
    width, l, b, H = 10, 6, 3, 4
    keras.utils.set_random_seed(0)
    model = ConditionedAutoencoder(build_encoder(width, 20, 3), build_decoder(width, 20, 3),
                                   build_forecaster(l, 3), frames, width, b, alpha=1.0, horizon=H,
                                   horizon_decay=0.8, length_weight=0.5)
    starts = np.array([0, 33, 120 - width + 1 - l - b - H + 1], dtype="int32")   # includes the last valid chunk
    _, terms = model.compute_terms(starts, training=False)
    losses = []
    for s in starts:
        for i in range(b):
            t0 = s + i
            windows = np.stack([frames[j:j + width] for j in range(t0, t0 + l + H)])
            z = model.encoder.predict_on_batch(windows)
            pred = roll_forward(model.forecaster, tf.constant(z[None, :l]), H)
            losses.append(float(horizon_loss(z[None, l - 1], z[None, l:], pred, 0.8, 0.5)))
    assert float(terms[1]) == pytest.approx(np.mean(losses), rel=1e-4)


def test_training_with_a_horizon_resumes_bit_identically(tmp_path):
    song = write_song(tmp_path / "s.wav", changing_song(7.0))
    kw = dict(horizon=3, horizon_decay=0.9, length_weight=1.0)
    _, whole, rows = _train(song, tmp_path, "a", 2, resume=False, **kw)
    _train(song, tmp_path, "b", 1, resume=False, **kw)
    _, resumed, rows_b = _train(song, tmp_path, "b", 2, resume=True, **kw)
    for a, b in zip(whole.variables, resumed.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert all(np.isfinite(r["forecasting"]) for r in rows)


def test_run_folders_name_the_horizon_only_when_it_is_not_one():
    from dae import layout
    one_step = layout.run_name(0.5, 0.001, 1.0, 0.0, 0.0, 3, 45, 1337)
    assert one_step == "w0.5s_R-F_a0.001_b1_g0_d0_z3_l45_s1337"          # the names runs always had
    assert layout.run_name(0.5, 0.001, 1.0, 0.0, 0.0, 3, 45, 1337, horizon=1) == one_step
    assert layout.run_name(0.5, 0.001, 1.0, 0.0, 0.0, 3, 45, 1337, 10, 0.9, 1.0) == one_step + "_h10_hd0.9_lw1"
