"""Benchmark: chunked training vs the straightforward one, 6 epochs on the demo song.

Straightforward (as the original): a Python generator builds each sample's 47
windows (45 history + the current and next window), a TimeDistributed encoder
encodes all of them, batches of 8. Ours: contiguous chunks gathered in-graph
from the in-memory spectrogram, every window encoded once per chunk.
Both use the same encoder, decoder, forecaster and loss terms. Run:

    .venv/bin/python benchmarks/bench_training.py
"""
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from dae import artifacts, cli, dataset, training  # noqa: E402
from dae.model import build_decoder, build_encoder, build_forecaster, loss_terms, variant_for  # noqa: E402
from dae.spectrogram import scale_unit, window_width  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import train_model  # noqa: E402  (ours runs with the script's own defaults)

SONG = "demo"
WINDOW_SECONDS = 0.5
EPOCHS = 6
HISTORY = train_model.HISTORY
ALPHA, BETA = train_model.ALPHA, train_model.BETA
LEARNING_RATE = train_model.LEARNING_RATE
BASELINE_BATCH = 8      # the original's batch size (the reference)
SEED = 1337
# ours: the defaults, then a larger-batch setting to show the speed / loss trade-off
OURS = [(train_model.CHUNK_SAMPLES, train_model.CHUNKS_PER_BATCH, LEARNING_RATE, "defaults"),
        (16, 4, 3e-3, "larger batch, higher learning rate")]


class Straightforward(keras.Model):
    """The original's data flow: every sample carries its own 47 windows."""

    def __init__(self, encoder, decoder, forecaster, alpha, beta):
        super().__init__()
        self.encoder, self.decoder, self.forecaster = encoder, decoder, forecaster
        self.td = keras.layers.TimeDistributed(encoder)
        self.alpha, self.beta = alpha, beta
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", "reconstruction", "forecasting")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def terms(self, data, training):
        (clip, top), _ = data
        z_hist = self.td(clip, training=training)
        z_top = self.td(top, training=training)
        x_hat = self.decoder(z_top[:, 0], training=training)
        v_hat = self.forecaster(z_hist, training=training)
        recon, forecast, _, _ = loss_terms(top[:, 0], x_hat, z_hist, z_top[:, 1], v_hat)
        return self.beta * recon + self.alpha * forecast, recon, forecast

    def train_step(self, data):
        with tf.GradientTape() as tape:
            total, recon, forecast = self.terms(data, True)
        grads = tape.gradient(total, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        for name, value in zip(self.trackers, (total, recon, forecast)):
            self.trackers[name].update_state(value)
        return {n: m.result() for n, m in self.trackers.items()}


def generator(frames, width, history):
    """Yield ((45 history windows, 2 top windows), 0) per sample, as the original."""
    n_windows = frames.shape[0] - width + 1
    for t in range(history - 1, n_windows - 1):
        clip = np.array([frames[j:j + width] for j in range(t - history + 1, t + 1)], dtype=np.float32)
        top = np.array([frames[j:j + width] for j in (t, t + 1)], dtype=np.float32)
        yield (clip, top), 0.0


def run_straightforward(frames, width, batch):
    keras.utils.set_random_seed(SEED)
    variant = variant_for(WINDOW_SECONDS)
    h = frames.shape[1]
    enc, dec = build_encoder(width, h, 3, variant), build_decoder(width, h, 3, variant)
    model = Straightforward(enc, dec, build_forecaster(HISTORY, 3), ALPHA, BETA)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    n_samples = frames.shape[0] - width + 1 - HISTORY
    spec = ((tf.TensorSpec((HISTORY, width, h), tf.float32), tf.TensorSpec((2, width, h), tf.float32)),
            tf.TensorSpec((), tf.float32))
    ds = tf.data.Dataset.from_generator(lambda: generator(frames, width, HISTORY), output_signature=spec)
    ds = ds.shuffle(int(n_samples * 0.7), seed=SEED).batch(batch, drop_remainder=True).repeat()
    t0 = time.perf_counter()
    hist = model.fit(ds, epochs=EPOCHS, steps_per_epoch=n_samples // batch, verbose=2)
    seconds = time.perf_counter() - t0
    last = {k: v[-1] for k, v in hist.history.items()}
    return seconds, last, training.reconstruction_bce(enc, dec, frames, width)


def run_ours(frames, width, sr, sha, chunk_samples, chunks_per_batch, learning_rate):
    with tempfile.TemporaryDirectory() as tmp:
        paths = artifacts.Paths(SONG, Path(tmp) / "data", Path(tmp) / "outputs", run="bench")
        t0 = time.perf_counter()
        model, rows = training.train(
            paths, frames, width, sr, sha, latent_dim=3, history=HISTORY, window_seconds=WINDOW_SECONDS,
            alpha=ALPHA, beta=BETA, gamma=0.0, delta=0.0, epochs=EPOCHS, chunk_samples=chunk_samples,
            chunks_per_batch=chunks_per_batch, learning_rate=learning_rate, seed=SEED, resume=False,
            verbose=2)
        seconds = time.perf_counter() - t0
    last = {k: rows[-1][k] for k in ("loss", "reconstruction", "forecasting")}
    return seconds, last, training.reconstruction_bce(model.encoder, model.decoder, frames, width)


def main():
    paths = artifacts.Paths(SONG)
    if not paths.spectrogram.exists():
        dataset.make(SONG, paths, WINDOW_SECONDS)
    F, T, S, meta = dataset.load(paths)
    frames, _, _ = scale_unit(S.T)
    width = window_width(T, WINDOW_SECONDS)
    print(f"demo song: {frames.shape[0]} columns, window {width} x {frames.shape[1]}, {EPOCHS} epochs")
    results = []
    for c, k, lr, what in OURS:
        name = f"chunked, {k} chunks x {c} samples, lr {lr:g} ({what})"
        results.append((name, run_ours(frames, width, meta["sample_rate"], meta["source_sha256"], c, k, lr)))
    same = OURS[0][0] * OURS[0][1]
    results.insert(0, (f"straightforward, batch {same} (as our defaults), lr {LEARNING_RATE:g}",
                       run_straightforward(frames, width, same)))
    base = run_straightforward(frames, width, BASELINE_BATCH)
    results.insert(0, (f"straightforward: generator, TimeDistributed, batch {BASELINE_BATCH}, lr {LEARNING_RATE:g}",
                       base))
    print("\n| method | seconds | speed-up | last-epoch reconstruction | last-epoch forecasting "
          "| reconstruction BCE, all windows | vs straightforward |")
    print("|---|---|---|---|---|---|---|")
    for name, (sec, last, bce) in results:
        print(f"| {name} | {sec:.1f} | {base[0] / sec:.1f}x | {last['reconstruction']:.4f} "
              f"| {last['forecasting']:.4f} | {bce:.4f} | {bce / base[2]:.3f} |")


if __name__ == "__main__":
    cli.run(main)
