"""Training fidelity: the sample order and batches of the original, exact resume, a diverging loss."""
import numpy as np
import pytest

from conftest import changing_song, prepared, write_song
from dae import layout, training
from dae.errors import UserError


def test_shuffle_buffer_is_a_permutation_that_cannot_run_ahead_of_its_input():
    rng = np.random.default_rng(0)
    n, size = 500, 350
    order = training.shuffle_buffer_order(n, size, rng)
    assert sorted(order) == list(range(n))
    # the i-th item out was among the first size + i items in
    assert np.all(order < size + np.arange(n))
    assert list(training.shuffle_buffer_order(20, 1, rng)) == list(range(20))   # a buffer of 1 keeps the order


def test_shuffle_buffer_of_the_whole_input_is_uniform():
    rng = np.random.default_rng(1)
    first = np.array([training.shuffle_buffer_order(10, 10, rng)[0] for _ in range(20000)])
    counts = np.bincount(first, minlength=10)
    # each of 10 items leads 2000 +- 3 sd (sd = sqrt(20000 * 0.1 * 0.9) = 42)
    assert np.all(np.abs(counts - 2000) < 130), counts


def test_a_70_percent_buffer_draws_each_batch_from_across_the_song():
    plan = training.schedule(1690, 1, 8, 1, seed=3)
    spans = np.ptp(plan[0], axis=1)
    assert np.median(spans) > 500          # batches are not neighbouring times (consecutive chunks span 7)


def test_original_order_streams_one_fixed_pass_as_the_original():
    n, epochs = 1690, 6
    plan = training.schedule(n, 1, 8, epochs, seed=5)
    steps = n // 8 - 1
    assert plan.shape == (epochs, steps, 8)                    # floor(n / 8) - 1 steps per epoch
    stream = plan.reshape(-1, 8)
    one_pass = stream[:n // 8]
    assert len(np.unique(one_pass)) == 8 * (n // 8)            # a pass uses each sample at most once
    np.testing.assert_array_equal(stream[n // 8:2 * (n // 8)], one_pass[:len(stream) - n // 8])  # not reshuffled
    # the plan of an epoch does not depend on how many epochs were asked for (so --epochs N extends a run)
    np.testing.assert_array_equal(training.schedule(n, 1, 8, 2, seed=5), plan[:2])
    assert not np.array_equal(training.schedule(n, 1, 8, 1, seed=6)[0], plan[0])


def test_chunks_in_original_order_tile_the_samples_without_overrunning():
    n, c = 203, 4
    plan = training.schedule(n, c, 4, 3, seed=0)
    tiles = set(np.minimum(np.arange(0, n, c), n - c).tolist())    # every chunk's last sample exists
    used = set(np.unique(plan).tolist())
    assert used <= tiles and len(used) == (len(tiles) // 4) * 4    # one fixed pass, the remainder dropped


def test_tiled_order_is_still_available():
    plan = training.schedule(300, 8, 2, 2, seed=0, order="tiled")
    assert plan.shape[2] == 2 and plan.max() <= 300 - 8
    with pytest.raises(UserError, match="(?i)ORDER"):
        training.schedule(300, 8, 2, 2, seed=0, order="sorted")


def _train(song, tmp_path, folder, epochs, resume, **kw):
    paths, frames, width, meta = prepared(song, tmp_path / folder, tmp_path / (folder + "_out"))
    run = layout.Paths(song, tmp_path / folder, tmp_path / (folder + "_out"), run="r")
    settings = dict(latent_dim=3, history=45, window_seconds=0.5, alpha=0.001, beta=1.0, gamma=0.0, delta=0.0,
                    chunk_samples=1, chunks_per_batch=8, learning_rate=1e-3, seed=11)
    settings.update(kw)
    model, rows = training.train(run, frames, width, meta["sample_rate"], meta["source_sha256"],
                                 epochs=epochs, resume=resume, verbose=0, **settings)
    return run, model, rows


def test_a_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    song = write_song(tmp_path / "s.wav", changing_song(7.0))
    _, whole, rows = _train(song, tmp_path, "a", 3, resume=False)
    _train(song, tmp_path, "b", 1, resume=False)
    _, resumed, rows_b = _train(song, tmp_path, "b", 3, resume=True)
    assert [r["epoch"] for r in rows_b] == [1, 2, 3]
    for a, b in zip(whole.variables, resumed.variables):       # weights, batch norm, dropout seed state
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert [r["loss"] for r in rows] == [r["loss"] for r in rows_b]


def test_a_diverging_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    song = write_song(tmp_path / "s.wav", changing_song(7.0))
    run, _, rows = _train(song, tmp_path, "a", 1, resume=False)
    before = run.checkpoint_state.read_bytes()
    with pytest.raises(UserError, match="not finite.*epoch 1 is kept"):
        _train(song, tmp_path, "a", 2, resume=True, alpha=float("nan"))   # same run folder, NaN from epoch 2 on
    assert run.checkpoint_state.read_bytes() == before


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_progress_shows_the_whole_run_and_only_the_terms_that_count():
    import io
    clock, out = _Clock(), io.StringIO()
    # a run of 3 epochs of 4 steps resumed after epoch 1; two steps per call into the graph; R (alpha = 0)
    progress = training.RunProgress(3, 4, 1, [("reconstruction", 1.0)], verbose=1, stream=out, clock=clock)
    logs = {"loss": 0.25, "reconstruction": 0.25, "forecasting": 0.9, "off_centre": 0.4, "curvature": 0.3}
    progress.on_train_begin()
    lines = []
    for epoch in (1, 2):
        progress.on_epoch_begin(epoch)
        for batch in (1, 3):
            clock.t += 10.0 if (epoch, batch) == (1, 1) else 1.0    # the first call traces the graph: slow
            progress.on_train_batch_end(batch, logs)
        progress.on_epoch_end(epoch, logs)
        lines.append(out.getvalue().splitlines()[-1])
    assert len(out.getvalue().splitlines()) == 2      # not a terminal: one line per epoch, nothing redrawn
    # after epoch 2 of 3: 8 of 12 steps done; 4 steps left at 0.5 s a step (1 s a call of 2 steps after the first)
    assert lines[0].startswith("epoch 2/3  step 4/4  run  67%  0:11 elapsed, 0:02 left")
    assert lines[1].startswith("epoch 3/3  step 4/4  run 100%  0:13 elapsed, 0:00 left")
    for line in lines:
        assert line.endswith("loss 0.25000 = reconstruction 0.25000")
        assert not any(name in line for name in ("forecasting", "off_centre", "curvature"))


def test_progress_says_it_does_not_know_the_time_left_before_a_second_call():
    import io
    clock, out = _Clock(), io.StringIO()
    progress = training.RunProgress(2, 4, 0, [("reconstruction", 1.0), ("forecasting", 0.001)], verbose=2,
                                    stream=out, clock=clock)
    logs = {"loss": 0.5, "reconstruction": 0.4, "forecasting": 100.0}
    progress.on_train_begin()
    progress.on_epoch_begin(0)
    clock.t = 30.0
    progress.on_train_batch_end(3, logs)      # the whole epoch in the first (tracing) call
    progress.on_epoch_end(0, logs)
    line = out.getvalue().strip()
    assert line.startswith("epoch 1/2  step 4/4  run  50%  0:30 elapsed, ? left")
    assert line.endswith("loss 0.50000 = reconstruction 0.40000 + 0.001 x forecasting 100.00000")


def test_progress_on_a_terminal_redraws_one_line_and_keeps_each_epochs():
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    clock, out = _Clock(), Terminal()
    progress = training.RunProgress(1, 20, 0, [("reconstruction", 1.0)], verbose=1, stream=out, clock=clock, every=0)
    progress.on_train_begin()
    progress.on_epoch_begin(0)
    for batch in range(20):
        clock.t += 1.0
        progress.on_train_batch_end(batch, {"loss": 10.0 ** (3 - batch), "reconstruction": 10.0 ** (3 - batch)})  # shrinks
    progress.on_epoch_end(0, {"loss": 0.5, "reconstruction": 0.5})
    text = out.getvalue()
    assert text.count("\r") == 20 and text.endswith("\n") and text.count("\n") == 1
    drawn = text.split("\r")
    assert all(len(b) >= len(a.rstrip()) for a, b in zip(drawn, drawn[1:]))   # each redraw covers the one before
    assert "step 10/20  run  50%" in drawn[9] and "0:10 left" in drawn[9]
