"""Video runs: the 2-D encoder and decoder, training with a held-out end, and the periodic closed loop."""
import csv
import json

import imageio_ffmpeg
import numpy as np
import pytest

from conftest import common, run_script

from dae import frames, layout, provenance, synth
from dae.audio import read_audio
from dae.video import Renderer


def _train(tmp_path, video, *, seed=0, validation=0.25, epochs=1, spread=4):
    """Train a tiny video run in-process on uint8 frames (with `spread` frames drawn from across the
    trained part each step, as video runs do); returns (model, rows, paths)."""
    from dae import training
    paths = layout.Paths("clip", tmp_path / "data", tmp_path / "out", run=f"v_s{seed}", frames="24x40_s1")
    model, rows = training.train(paths, video, 1, 10.0, "sha", latent_dim=3, history=5, window_seconds=0.5,
                                 alpha=0.001, beta=1.0, gamma=0.0, delta=0.0, epochs=epochs, chunk_samples=8,
                                 chunks_per_batch=2, learning_rate=1e-3, seed=seed, order="tiled", verbose=0,
                                 validation=validation, hop=1, record={"scale_min": 0.0, "scale_max": 255.0},
                                 spread=spread)
    return model, rows, paths


def test_frame_encoder_and_decoder_fit_any_frame_size():
    from dae.model import build_frame_decoder, build_frame_encoder
    for shape in ((150, 268), (24, 40), (17, 9)):
        enc, dec = build_frame_encoder(shape, 3), build_frame_decoder(shape, 3)
        assert enc.input_shape == (None, *shape, 1) and enc.output_shape == (None, 3)
        assert dec.output_shape == (None, *shape, 1)
        x = np.random.default_rng(0).random((2, *shape, 1), dtype=np.float32)
        y = dec(enc(x)).numpy()
        assert y.shape == x.shape and np.all((y > 0) & (y < 1))


def test_the_held_out_end_is_never_trained_on(tmp_path):
    """Two videos that differ only in their last quarter train to the same weights; only the
    validation scores, computed on that quarter, differ (the spread frames too are drawn from
    the trained part only)."""
    video = synth.demo_video(seconds=8.0, fps=10, size=(24, 40))
    other = video.copy()
    split = int(round(len(video) * 0.75))
    other[split:] = np.random.default_rng(1).integers(0, 256, other[split:].shape, dtype=np.uint8)
    m1, rows1, p1 = _train(tmp_path / "a", video)
    m2, rows2, p2 = _train(tmp_path / "b", other)
    for a, b in zip(m1.encoder.get_weights() + m1.decoder.get_weights(),
                    m2.encoder.get_weights() + m2.decoder.get_weights()):
        np.testing.assert_array_equal(a, b)
    for key in ("loss", "reconstruction", "forecasting"):
        assert rows1[-1][key] == rows2[-1][key]
    assert rows1[-1]["val_reconstruction"] != rows2[-1]["val_reconstruction"]
    header = (p1.history).read_text().splitlines()[0].split(",")
    assert {"val_loss", "val_reconstruction", "val_forecasting", "val_off_centre", "val_curvature"} <= set(header)


def test_periodic_video_embeds_as_a_closed_loop(tmp_path):
    """Through the scripts, from a lossy MP4 (so frame j and j + P are not the same bytes):
    z(t + P) is close to z(t) against the path's diameter, and the path is a loop, not a point."""
    period, repeats = 12, 12
    video = frames.write_video(tmp_path / "orbit.mp4", synth.periodic_video(period * repeats, period, (24, 40)), 12)
    args = ("--song", video, "--source", "video", "--frame-size", "24x40", *common(tmp_path / "d", tmp_path / "o"))
    train = ("--history", 8, "--epochs", 3, "--verbose", 0)     # the video schedule: 4 chunks of 16, tiled
    for script, extra in (("save_dataset.py", ()), ("train_model.py", train), ("embed_audio.py", ("--history", 8))):
        p = run_script(script, *args, *extra)
        assert p.returncode == 0, (script, p.stderr)
    run = next((tmp_path / "d" / "orbit" / "runs").iterdir())
    assert run.name.startswith("v24x40s1_R-F_") and "_l8_" in run.name
    emb = np.load(run / "embedding.npz")
    Z = emb["Z"]
    assert Z.shape == (period * repeats, 3)
    np.testing.assert_allclose(emb["t_center"], np.arange(len(Z)) / 12, atol=1e-3)   # one point per frame, at its time
    gap = np.linalg.norm(Z[period:] - Z[:-period], axis=1)
    diameter = np.max(np.linalg.norm(Z[:, None] - Z[None], axis=-1))
    assert diameter > 0
    assert np.median(gap) < 0.05 * diameter and gap.max() < 0.2 * diameter
    within = np.linalg.norm(Z[:period] - Z[0], axis=1)
    assert within.max() > 0.3 * diameter
    meta = json.loads((run / "embedding.npz.json").read_text())
    assert meta["points_per_second"] == pytest.approx(12) and meta["width"] == 1 and "frames" in meta["inputs"]
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and all(np.isfinite(float(r["val_reconstruction"])) for r in rows)


def test_later_stages_work_on_a_video_run(tmp_path):
    """Latent LSTM, forecasts and divergence read a video run's embedding like any other: at the
    video's frame rate; the video shows the source frames beside the path, in sync; so does the
    player page, with the video's own sound."""
    sr = 22050
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(12 * sr) / sr)       # the video's own sound track
    video = frames.write_video(tmp_path / "orbit.mp4", synth.periodic_video(120, 10, (16, 24)), 10, audio=(tone, sr))
    source = ("--song", video, "--source", "video", "--frame-size", "16x24", *common(tmp_path / "d", tmp_path / "o"))
    args = (*source, "--history", 5)
    steps = [("save_dataset.py", *source), ("train_model.py", *args, "--epochs", 1, "--verbose", 0),
             ("embed_audio.py", *args), ("train_latent_lstm.py", *args, "--epochs", 1),
             ("forecast_knn.py", *args, "--initial-condition", 40),
             ("forecast_lstm.py", *args, "--initial-condition", 40), ("divergence.py", *args, "--n-steps", 10)]
    for script, *rest in steps:
        p = run_script(script, *rest)
        assert p.returncode == 0, (script, p.stderr)
    run = next((tmp_path / "d" / "orbit" / "runs").iterdir())
    paths = layout.Paths(video, tmp_path / "d", tmp_path / "o", run=run.name)
    assert paths.frames == tmp_path / "d" / "orbit" / "frames_16x24_s1.npz"     # found from the run's name
    for kind, f in (("latent lstm", "latent_lstm.keras"), ("knn forecast", "forecast_knn_ic40.npz"),
                    ("lstm forecast", "forecast_lstm_ic40.npz"), ("divergence", "divergence_k5_x1.npz")):
        chain = provenance.check(paths, kind, path=run / f)         # the whole chain, down to the video file
        assert chain["frames"]["source_sha256"] == provenance.source_hash(video)
    div = json.loads((run / "divergence_k5_x1.npz.json").read_text())
    assert div["points_per_second"] == pytest.approx(10)
    assert div["growth_per_second"] == pytest.approx(div["growth_per_step"] * 10)
    assert (tmp_path / "o" / "orbit" / run.name / "forecast_knn_ic40.png").stat().st_size > 10_000
    p = run_script("play_embedding.py", *args, "--format", "html")      # the page: frames and own sound
    assert p.returncode == 0, p.stderr
    page = tmp_path / "o" / "orbit" / run.name / "player.html"
    record = json.loads(layout.sidecar_path(page).read_text())
    assert record["inputs"]["frames"]["sha256"] == provenance.file_hash(paths.frames)
    assert record["frames"]["frames"] == 120 and (page.parent / record["frames"]["folder"] / "00001.jpg").is_file()
    x, rate = read_audio(page.parent / "player.m4a")
    assert abs(len(x) / rate - 12.0) < 0.1
    assert abs(np.argmax(np.abs(np.fft.rfft(x[rate:2 * rate]))) - 440) <= 2
    # the MP4: the video's own frames beside the path, in sync (at t the source frame with the largest time <= t)
    p = run_script("play_embedding.py", *args, "--format", "mp4", "--width", 320, "--height", 180, "--fps", 10,
                   "--workers", 1, "--progress", "false")
    assert p.returncode == 0, p.stderr
    out = tmp_path / "o" / "orbit" / run.name / "trajectory.mp4"
    images, times, _ = frames.load(paths)
    emb = np.load(run / "embedding.npz")
    renderer = Renderer(emb["Z"], emb["t_center"], frames=(images, times), width=320, height=180)
    r0, r1, c0, c1 = renderer.frame_box
    shown = [images[k][renderer.frame_rows][:, renderer.frame_cols].astype(float) for k in range(len(images))]
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    decoded = [np.frombuffer(raw, np.uint8).reshape(180, 320, 3) for raw in reader]
    assert len(decoded) == round(12.0 * 10)                  # 12 s at 10 fps
    x, rate = read_audio(out)                                # its own sound, muxed in: as long, the same tone
    assert abs(len(x) / rate - 12.0) < 0.1
    second = x[rate:2 * rate]
    assert abs(np.argmax(np.abs(np.fft.rfft(second))) * rate / len(second) - 440) <= 2
    for k in range(0, len(decoded), 7):
        panel = decoded[k][r0:r1, c0:c1].mean(axis=2)
        errors = np.array([np.abs(panel - img).mean() for img in shown])
        j = frames.frame_at(times, k / 10)                  # the period repeats frames: compare what is shown
        assert errors[j] <= errors.min() + 1.0, (k, j, errors[j], errors.min())
        for other in (j - 1, j + 1):                        # a frame early or late would be seen
            if 0 <= other < len(shown) and np.abs(shown[other] - shown[j]).mean() > 5:
                assert errors[j] < errors[other] - 2.0, (k, j, other)


def test_encoding_in_pieces_gives_the_same_loss_and_gradients():
    """Video steps encode their frames in pieces with recomputed activations (bounded memory):
    the same loss and gradients as encoding every frame at once."""
    import tensorflow as tf
    from dae import training
    video = synth.demo_video(seconds=6.0, fps=10, size=(24, 40))
    model = training.build(video, width=1, latent_dim=3, history=5, window_seconds=0.5, chunk_samples=8, alpha=0.001,
                           beta=1.0, gamma=0.01, delta=0.01, learning_rate=1e-3)
    for layer in model.forecaster.layers:           # no dropout: two calls must see the same network
        if hasattr(layer, "cell"):
            layer.cell.dropout = 0.0
    starts = tf.constant([0, 7, 20], tf.int32)

    def loss_and_grads(piece):
        model.encode_piece = piece
        with tf.GradientTape() as tape:
            total, _ = model.compute_terms(starts, training=True)
        return float(total), tape.gradient(total, model.trainable_variables)

    whole, g_whole = loss_and_grads(0)
    for piece in (4, 3):                             # 3 and 4 do not divide the 8 + 5 frames of a chunk
        total, g = loss_and_grads(piece)
        assert total == pytest.approx(whole, rel=1e-6)
        for a, b in zip(g_whole, g):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)


def test_spread_frames_are_reconstructed_with_the_chunk():
    """With spread windows, the reconstruction term is the mean BCE over the chunk's current windows
    and the spread windows together (computed here independently, window by window); the forecasting
    term is the chunk's alone."""
    import keras
    import tensorflow as tf
    from dae import training
    video = synth.demo_video(seconds=6.0, fps=10, size=(24, 40))
    b, l = 8, 5
    model = training.build(video, width=1, latent_dim=3, history=l, window_seconds=0.5, chunk_samples=b, alpha=0.001,
                           beta=1.0, gamma=0.0, delta=0.0, learning_rate=1e-3, spread=3)
    starts, spread = tf.constant([2, 30], tf.int32), tf.constant([0, 44, 59], tf.int32)
    _, (recon, forecast, _, _) = model.compute_terms(starts, spread=spread)
    _, (recon0, forecast0, _, _) = model.compute_terms(starts)
    current = [s + l - 1 + i for s in (2, 30) for i in range(b)]        # each sample's window t
    x = video[current + [0, 44, 59]].astype(np.float32)[..., None] / 255
    x_hat = model.decoder(model.encoder(x)).numpy()
    bce = keras.losses.binary_crossentropy(x.reshape(len(x), -1), x_hat.reshape(len(x), -1)).numpy()
    assert float(recon) == pytest.approx(bce.mean(), rel=1e-5)
    assert float(recon0) == pytest.approx(bce[:-3].mean(), rel=1e-5) and float(recon) != float(recon0)
    assert float(forecast) == pytest.approx(float(forecast0), rel=1e-6)


def test_spread_draws_are_fixed_by_seed_and_epoch_and_stay_in_the_trained_part():
    from dae import training
    plan = training.plan(200, 16, 1, 3, seed=4, order="tiled", spread=8, n_windows=150)
    assert plan.shape == (3, plan.shape[1], 1 + 8)
    np.testing.assert_array_equal(plan[..., :1], training.schedule(200, 16, 1, 3, 4, "tiled"))
    draws = plan[..., 1:]
    assert draws.min() >= 0 and draws.max() < 150 and len(np.unique(draws)) > 100     # across the trained part
    np.testing.assert_array_equal(training.plan(200, 16, 1, 2, 4, "tiled", 8, 150), plan[:2])   # resume, --epochs N
    assert not np.array_equal(training.plan(200, 16, 1, 1, 5, "tiled", 8, 150)[0, :, 1:], draws[0])
    assert training.plan(200, 16, 1, 3, 4, "tiled").shape[-1] == 1                         # none: the chunks only
