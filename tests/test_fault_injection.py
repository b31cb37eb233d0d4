"""Kill training with SIGKILL at 20+ points across its epochs and inside its saves, resume each time,
and check that the finished run equals an uninterrupted one bit for bit, and that no kill ever left a
half-written or mixed artifact for a later stage to read."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np

from conftest import ROOT, changing_song, common, write_song
from dae import dataset, embedding, layout, provenance, training
from dae.errors import UserError

EPOCHS, SEED, KILLS = 3, 4, 22

# Runs train_model.py, numbering its "events" along one global timeline that does not depend on
# where the run resumed: every end of a training step call and every rename / symlink of a file
# from the start of training on. At event KILL_AT it sends itself SIGKILL (nothing cleans up).
CHILD = textwrap.dedent("""
    import os, runpy, signal, sys
    sys.path.insert(0, {root!r})
    from dae import training
    kill_at, per_epoch, epochs = (int(a) for a in sys.argv[1:4])
    state = {{"on": False, "n": 0, "marks": []}}

    def event():
        if state["on"]:
            state["n"] += 1
            if state["n"] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    for name in ("replace", "rename", "symlink"):
        def wrapped(*a, _real=getattr(os, name), **k):
            event()
            return _real(*a, **k)
        setattr(os, name, wrapped)

    def on_train_begin(self, logs=None):
        state["on"], state["n"] = True, len(self.rows) * per_epoch   # epochs already done
    def on_train_batch_end(self, batch, logs=None):
        event()
    end = training.EpochCheckpoint.on_epoch_end
    def on_epoch_end(self, epoch, logs=None):
        end(self, epoch, logs)
        state["marks"].append(state["n"])
    training.EpochCheckpoint.on_train_begin = on_train_begin
    training.EpochCheckpoint.on_train_batch_end = on_train_batch_end
    training.EpochCheckpoint.on_epoch_end = on_epoch_end
    recalibrate = training.recalibrate_batch_norm
    def recalibrate_then_save(*a, **k):      # the save phase starts here (also when all epochs were done)
        if not state["on"]:
            state["on"], state["n"] = True, epochs * per_epoch
        state["marks"].append(state["n"])
        return recalibrate(*a, **k)
    training.recalibrate_batch_norm = recalibrate_then_save
    sys.argv = ["train_model.py"] + sys.argv[4:]
    try:
        runpy.run_path({script!r}, run_name="__main__")
    finally:
        print("events", state["n"], "marks", *state["marks"])
""")


def _weights(paths):
    _, *models = training.load_models(paths)
    return [w for m in models for w in m.get_weights()]


def _consistent(paths):
    """What a later stage would read now: a complete model or none, a readable checkpoint or none."""
    try:
        chain = provenance.check(paths, "encoder")
        ids = {chain[p]["model_id"] for p in provenance.MODEL_PARTS}
        assert len(ids) == 1, f"a mixed model: {ids}"
    except UserError as e:
        assert "does not exist yet" in str(e) or "train_model.py" in str(e), str(e)
    if paths.checkpoint_state.exists():
        with np.load(paths.checkpoint_state, allow_pickle=False) as d:
            assert 1 <= int(d["epoch"]) <= EPOCHS


def test_sigkill_at_20_points_across_epochs_and_saves_then_resume_is_bit_identical(tmp_path):
    # 148 samples: 17 steps per epoch, a prime, so one step per graph call and many points to kill at
    song = write_song(tmp_path / "song.wav", changing_song(9.5))
    child = tmp_path / "child.py"
    child.write_text(CHILD.format(root=str(ROOT), script=str(ROOT / "train_model.py")))
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def setup(folder):
        data, out = tmp_path / folder, tmp_path / (folder + "_out")
        dataset.make(song, layout.Paths(song, data, out), 0.5)
        args = ["--song", song, *common(data, out), "--epochs", EPOCHS, "--seed", SEED, "--verbose", 0]
        return data, out, [str(a) for a in args]

    def train(kill_at, per_epoch, args):
        return subprocess.run([sys.executable, str(child), str(kill_at), str(per_epoch), str(EPOCHS), *args],
                              capture_output=True, text=True, timeout=600, env=env)

    # the uninterrupted run, and its timeline: marks at the end of each epoch and where the save starts
    data, out, args = setup("whole")
    whole = train(0, 0, args)
    assert whole.returncode == 0, whole.stderr
    words = whole.stdout.split("events")[-1].split()
    total, marks = int(words[0]), [int(w) for w in words[2:]]
    per_epoch, train_end = marks[0], marks[EPOCHS - 1]
    assert marks[:EPOCHS] == [per_epoch * (e + 1) for e in range(EPOCHS)] and marks[EPOCHS] == train_end
    assert total - train_end >= 3                    # the save renames several files
    run = next((data / "song" / "runs").iterdir()).name
    whole_paths = layout.Paths(song, data, out, run=run)

    # kill points: every event of the save, the rest spread over the epochs (steps and checkpoint writes)
    rng = np.random.default_rng(0)
    save_points = list(range(train_end + 1, total + 1))
    train_points = rng.choice(np.arange(1, train_end + 1), replace=False,
                              size=min(train_end, max(KILLS - len(save_points), 2 * EPOCHS)))
    points = sorted(set(save_points) | set(train_points.tolist()))
    assert len(points) >= KILLS and max(points) == total, (points, per_epoch, train_end, total)

    data, out, args = setup("killed")
    paths = layout.Paths(song, data, out, run=run)
    for point in points:
        p = train(point, per_epoch, args)
        assert p.returncode == -signal.SIGKILL, (point, p.returncode, p.stderr[-2000:])
        _consistent(paths)
    last = train(0, per_epoch, args)
    assert last.returncode == 0, last.stderr
    assert not list(paths.run_dir.glob(".tmp*"))

    for a, b in zip(_weights(whole_paths), _weights(paths), strict=True):
        np.testing.assert_array_equal(a, b)
    Z_whole, Z = embedding.embed_song(whole_paths)[0], embedding.embed_song(paths)[0]
    np.testing.assert_array_equal(Z_whole, Z)
