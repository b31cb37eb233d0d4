"""The model trains on every installed Keras backend (TensorFlow, JAX, PyTorch): each backend in its own
process (KERAS_BACKEND set) trains a small run through `training.train` on a short synthesised song, and
the test checks that the loss falls, that every term is reported and finite, that the same seed gives the
same losses and weights, and that a run resumed from its checkpoint ends bit-identical to a whole one.

A backend that is not installed is skipped; one that is installed and cannot train fails. Marked
`backends` (pytest -m backends runs only these)."""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import ROOT

pytestmark = pytest.mark.backends

BACKENDS = ("tensorflow", "jax", "torch")
EPOCHS = 3
TERMS = ("loss", "reconstruction", "forecasting", "off_centre", "curvature")

# Trains (or resumes) one run in <dir> and prints its history and a digest of every variable as JSON.
CHILD = textwrap.dedent("""
    import hashlib, json, sys
    from pathlib import Path
    sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
    import numpy as np
    import keras
    from conftest import changing_song, prepared, write_song
    from dae import layout, training
    folder, epochs = Path(sys.argv[1]), int(sys.argv[2])
    song = folder / "s.wav"
    if not song.exists():
        write_song(song, changing_song(6.0))
    paths, frames, width, meta = prepared(song, folder / "data", folder / "out")
    run = layout.Paths(song, folder / "data", folder / "out", run="r")
    model, rows = training.train(run, frames, width, meta["sample_rate"], meta["source_sha256"], latent_dim=3,
                                 history=8, window_seconds=0.5, epochs=epochs, chunk_samples=1, chunks_per_batch=8,
                                 learning_rate=3e-3, seed=5, alpha=0.5, beta=1.0, gamma=0.1, delta=0.1,
                                 resume=True, verbose=0)
    digest = hashlib.sha256()
    for v in model.variables + model.optimizer.variables:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(v)).tobytes())
    print("RESULT " + json.dumps(dict(backend=keras.backend.backend(), rows=rows, digest=digest.hexdigest())))
""").format(root=str(ROOT), tests=str(ROOT / "tests"))


def train(backend, folder, epochs):
    """Train (or resume) the run in `folder` to `epochs` under `backend`; returns the child's result."""
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(epochs)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"{backend} could not train:\n{proc.stderr[-3000:]}"
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["backend"] == backend
    return result


_runs = {}


def runs(backend, tmp_path_factory):
    """Two whole runs of the same seed and one stopped after epoch 1 then resumed, under `backend`."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    if backend not in _runs:
        tmp = tmp_path_factory.mktemp(f"backend-{backend}")
        whole, again = train(backend, tmp / "a", EPOCHS), train(backend, tmp / "b", EPOCHS)
        train(backend, tmp / "c", 1)
        _runs[backend] = dict(whole=whole, again=again, resumed=train(backend, tmp / "c", EPOCHS))
    return _runs[backend]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_model_trains_and_reports_every_term(backend, tmp_path_factory):
    rows = runs(backend, tmp_path_factory)["whole"]["rows"]
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    for row in rows:
        for name in TERMS:
            assert name in row and np.isfinite(row[name]), (name, row)
    assert rows[-1]["loss"] < 0.9 * rows[0]["loss"], [r["loss"] for r in rows]
    assert rows[-1]["reconstruction"] < rows[0]["reconstruction"]
    for row in rows:       # the loss is the weighted sum of its terms (alpha 0.5, beta 1, gamma 0.1, delta 0.1)
        weighted = row["reconstruction"] + 0.5 * row["forecasting"] + 0.1 * row["off_centre"] + 0.1 * row["curvature"]
        assert row["loss"] == pytest.approx(weighted, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_same_seed_gives_the_same_losses_and_weights(backend, tmp_path_factory):
    r = runs(backend, tmp_path_factory)
    losses = [[row[name] for name in TERMS] for row in r["whole"]["rows"]]
    assert losses == [[row[name] for name in TERMS] for row in r["again"]["rows"]]
    assert r["whole"]["digest"] == r["again"]["digest"]


@pytest.mark.parametrize("backend", [*BACKENDS[:2], pytest.param("torch", marks=pytest.mark.xfail(
    strict=True, reason="known: on PyTorch a resumed run's epoch 2 differs from the whole run's (not yet found why)"))])
def test_a_resumed_run_is_bit_identical(backend, tmp_path_factory):
    r = runs(backend, tmp_path_factory)
    assert [row["loss"] for row in r["resumed"]["rows"]] == [row["loss"] for row in r["whole"]["rows"]]
    assert r["resumed"]["digest"] == r["whole"]["digest"]
