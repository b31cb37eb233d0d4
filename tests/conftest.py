"""Shared helpers: synthetic songs written by the tests, and runners for the scripts."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dae import audio, dataset, layout, synth  # noqa: E402
from dae.spectrogram import scale_unit, window_width  # noqa: E402

SR = 22050  # half rate keeps the tests quick: 21.5 columns/s, 187 frequency bins


def write_song(path, x, sr=SR, encoding="int16"):
    audio.write_wav(path, x, sr, encoding)
    return path


@pytest.fixture
def project(tmp_path):
    """An empty project tree: returns (data_dir, output_dir)."""
    return tmp_path / "data", tmp_path / "outputs"


def run_script(script, *args, cwd=ROOT, timeout=600):
    """Run a pipeline script in a subprocess; returns CompletedProcess (text)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


def prepared(song_path, data_dir, output_dir, window_seconds=0.5):
    """Save the spectrogram of `song_path`; returns (paths, frames, width, meta)."""
    paths = layout.Paths(song_path, data_dir, output_dir)
    dataset.make(song_path, paths, window_seconds)
    F, T, S, meta = dataset.load(paths)
    frames, _, _ = scale_unit(S.T)
    return paths, frames, window_width(T, window_seconds), meta


def train_small(song_path, data_dir, output_dir, *, window_seconds=0.5, latent_dim=3, alpha=0.001,
                epochs=2, seed=0, resume=False, history=45, chunk_samples=16, chunks_per_batch=4,
                order="tiled"):
    """Train a run on a short song in-process; returns (run paths, model, rows, frames, width)."""
    from dae import training
    paths, frames, width, meta = prepared(song_path, data_dir, output_dir, window_seconds)
    run = layout.run_name(window_seconds, alpha, 1.0, 0.0, 0.0, latent_dim, history, seed)
    rpaths = layout.Paths(song_path, data_dir, output_dir, run=run)
    _, lo, hi = scale_unit(dataset.load(paths)[2].T)
    record = training.model_record({"SONG": str(song_path), "WINDOW_SECONDS": window_seconds, "ALPHA": alpha,
                                    "LATENT_DIM": latent_dim, "HISTORY": history, "SEED": seed, "EPOCHS": epochs},
                                   meta, (lo, hi), alpha)
    model, rows = training.train(
        rpaths, frames, width, meta["sample_rate"], meta["source_sha256"], latent_dim=latent_dim,
        history=history, window_seconds=window_seconds, alpha=alpha, beta=1.0, gamma=0.0, delta=0.0,
        epochs=epochs, chunk_samples=chunk_samples, chunks_per_batch=chunks_per_batch,
        order=order, learning_rate=1e-3, seed=seed, resume=resume, verbose=0, record=record)
    return rpaths, model, rows, frames, width


def loop_song(seconds=2.0, repeats=6, sr=SR):
    return synth.loop(seconds, repeats, sr)


def changing_song(seconds=10.0, sr=SR):
    """Drums and bass for half the clip, then chords on top: not periodic."""
    a = synth.bar(sr, bass=(40, 43, 45, 47))
    b = synth.bar(sr, bass=(45, 48, 52, 48), chord=(57, 60, 64), busy_hats=True)
    n = int(seconds * sr)
    x = np.concatenate([np.tile(a, 3), np.tile(b, 3)])[:n]
    return 0.9 * x / np.abs(x).max()


def one_line_error(proc, *words):
    """A script ended with exit status 1 and one line on stderr containing every word; returns it."""
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def user_error(fn, *words):
    """fn() raises a one-line UserError containing every word; returns its text."""
    from dae.errors import UserError
    with pytest.raises(UserError) as e:
        fn()
    text = str(e.value)
    assert "\n" not in text, text
    for w in words:
        assert w in text, text
    return text


def common(data, out):
    return ["--data-dir", data, "--output-dir", out]


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """save_dataset -> train (R-F and R) -> embed on a short synthetic song, through the CLI."""
    tmp = tmp_path_factory.mktemp("pipe")
    data, out = tmp / "data", tmp / "outputs"
    song = write_song(tmp / "groove.wav", changing_song(10.0))
    steps = [("save_dataset.py",), ("train_model.py", "--epochs", 1, "--verbose", 0),
             ("train_model.py", "--epochs", 1, "--verbose", 0, "--alpha", 0),
             ("embed_audio.py",), ("embed_audio.py", "--alpha", 0)]
    procs = [run_script(s[0], "--song", song, *common(data, out), *s[1:]) for s in steps]
    return tmp, data, out, song, procs
