"""Benchmark: does the fast training condition the path as the original training does?

For two synthesised songs (the demo, and a second one with another tempo and
structure) and several seeds, train the same model several ways and compare,
in one run: fit time, reconstruction BCE over all windows, the last epoch's
forecasting loss, the mean turning angle of the embedded path, and KNN
divergence δ at steps 1 and 10 (the default exclusion rule of divergence.py).

- reference: the original's data flow, as `shared` documents it: a Python
  generator of one sample at a time (45 history windows + the current and next
  window), a shuffle buffer of 70% of the samples that is not reshuffled
  between passes, batches of 8 (remainder dropped), floor(n / 8) - 1 steps per
  epoch, every window encoded by a TimeDistributed encoder.
- default: `train_model.py`'s own defaults.
- the other rows: faster schedules (see ALTERNATIVES).

Every model's decoder batch-norm statistics are recalibrated over all windows
before the BCE is measured (the stage does this), so the BCE compares training
and not the running averages. Writes the table to
benchmarks/results/bench_training.md (the README quotes it). Run:

    .venv/bin/python benchmarks/bench_training.py [--seeds 5] [--epochs 6]

Every setting below can be given on the command line (``--help`` lists them).
"""
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from dae import audio, cli, config, dataset, docs, layout, store, synth, training  # noqa: E402
from dae.embedding import encode  # noqa: E402
from dae.errors import UserError  # noqa: E402
from dae.forecast import KNNField, divergence, turning_angle, unit_scale  # noqa: E402
from dae.model import build_decoder, build_encoder, build_forecaster, loss_terms, variant_for  # noqa: E402
from dae.spectrogram import scale_unit, window_width  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import settings  # noqa: E402
import train_model  # noqa: E402  (the default runs with the script's own defaults)

TRAINING = config.Training.from_constants(settings, train_model)   # train_model.py's defaults

SONGS = "demo,second"   # comma-separated; "second" is synthesised below (90 bpm, another structure)
SEEDS = 5               # seeds 0 .. SEEDS-1 for every song and method
EPOCHS = 6              # as the original for a 0.5 s window
WINDOW_SECONDS = 0.5
METHODS = "reference,default,batch16,chunks8x1,chunks4x4,tiled8x2"   # rows of the table, from the list below
OUT = "benchmarks/results/bench_training.md"   # also the README's table: its section is the file's name

# name: (chunk samples, chunks per batch, order, learning rate, what it changes)
ALTERNATIVES = {
    "default": (TRAINING.chunk_samples, TRAINING.chunks_per_batch, TRAINING.order, TRAINING.learning_rate,
                "train_model.py defaults"),
    "batch16": (1, 16, "original", 1e-3, "16 samples drawn like the original's: batch 16, half the updates "
                "(isolates the update count)"),
    "chunks8x1": (8, 1, "original", 1e-3, "1 chunk of 8 consecutive samples per step: the original's number of "
                  "updates, neighbouring moments (isolates consecutiveness)"),
    "chunks2x8": (2, 8, "original", 1e-3, "8 chunks of 2 consecutive samples drawn like the original's samples: "
                  "batch 16, half the updates"),
    "chunks4x4": (4, 4, "original", 1e-3, "4 chunks of 4 consecutive samples drawn like the original's samples: "
                  "batch 16, half the updates"),
    "tiled8x2": (8, 2, "tiled", 1e-3, "2 chunks of 8 consecutive samples, random phase tiling "
                 "(the schedule before this benchmark)"),
}
HISTORY, ALPHA, BETA = TRAINING.history, TRAINING.alpha, TRAINING.beta   # as train_model.py
K, EVERY, STEPS = 5, 10, 10   # divergence: as divergence.py, steps 1 and 10 reported


@dataclass(frozen=True)
class Bench(config.Settings):
    """The benchmark's settings; `cli.parse(Bench, globals())` takes their defaults from the constants above."""
    songs: str = config.setting(SONGS, "comma-separated songs; \"demo\" and \"second\" (90 bpm, another "
                                       "structure) are synthesised")
    seeds: int = config.setting(SEEDS, "seeds 0 .. SEEDS-1 for every song and method", least=1, most=10_000)
    epochs: int = config.setting(EPOCHS, "epochs of every method (6: as the original for a 0.5 s window)",
                                 least=1, most=100_000)
    window_seconds: float = config.same_as(config.Run, "window_seconds")
    methods: str = config.setting(METHODS, "comma-separated rows of the table: reference and any of "
                                           + ", ".join(ALTERNATIVES))
    out: str = config.setting(OUT, "the table's Markdown file; the README's section of the same name "
                                   "(bench_training, bench_training_corpus), if it has one, gets it too")
    history: int = config.same_as(config.Run, "history")
    alpha: float = config.same_as(config.Run, "alpha")
    beta: float = config.same_as(config.Run, "beta")
    k: int = config.same_as(config.KnnRule, "k")
    every: int = config.same_as(config.Divergence, "every")
    steps: int = config.setting(STEPS, "divergence δ is reported at steps 1 and STEPS", unit="steps",
                                least=1, most=30)


def second_song(sr=synth.SR, bpm=90):
    """About 37 s at 90 bpm: 2 bars of chords alone, then A B A of 4 bars each with a
    different bass line and lower chords than the demo song."""
    bass_a, bass_b = [(36, 43, 36, 43), (41, 48, 41, 48)], [(38, 45, 50, 45), (43, 47, 50, 47)]
    chords = [(48, 52, 55), (53, 57, 60)]
    bars = [synth.bar(sr, bpm, drums=False, chord=chords[k % 2]) for k in range(2)]
    for section in ("A", "B", "A"):
        for k in range(4):
            if section == "A":
                bars.append(synth.bar(sr, bpm, bass=bass_a[k % 2]))
            else:
                bars.append(synth.bar(sr, bpm, bass=bass_b[k % 2], chord=chords[k % 2], busy_hats=True))
    song = np.concatenate(bars)
    return 0.9 * song / np.max(np.abs(song))


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

    def train_step(self, data):
        (clip, top), _ = data
        with tf.GradientTape() as tape:
            z_hist = self.td(clip, training=True)
            z_top = self.td(top, training=True)
            x_hat = self.decoder(z_top[:, 0], training=True)
            v_hat = self.forecaster(z_hist, training=True)
            recon, forecast, _, _ = loss_terms(top[:, 0], x_hat, z_hist, z_top[:, 1], v_hat)
            total = self.beta * recon + self.alpha * forecast
        grads = tape.gradient(total, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        for name, value in zip(self.trackers, (total, recon, forecast)):
            self.trackers[name].update_state(value)
        return {n: m.result() for n, m in self.trackers.items()}


def generator(frames, width, history):
    """Yield ((45 history windows, 2 top windows), 0) per sample, in time order, as the original."""
    n_windows = frames.shape[0] - width + 1
    for t in range(history - 1, n_windows - 1):
        clip = np.array([frames[j:j + width] for j in range(t - history + 1, t + 1)], dtype=np.float32)
        top = np.array([frames[j:j + width] for j in (t, t + 1)], dtype=np.float32)
        yield (clip, top), 0.0


def run_reference(cfg, frames, width, seed):
    keras.utils.set_random_seed(seed)
    variant = variant_for(cfg.window_seconds)
    h, history = frames.shape[1], cfg.history
    enc, dec = build_encoder(width, h, 3, variant), build_decoder(width, h, 3, variant)
    model = Straightforward(enc, dec, build_forecaster(history, 3, unroll=False), cfg.alpha, cfg.beta)
    model.compile(optimizer=keras.optimizers.Adam(TRAINING.learning_rate))
    n_samples = frames.shape[0] - width + 1 - history
    spec = ((tf.TensorSpec((history, width, h), tf.float32), tf.TensorSpec((2, width, h), tf.float32)),
            tf.TensorSpec((), tf.float32))
    ds = tf.data.Dataset.from_generator(lambda: generator(frames, width, history), output_signature=spec)
    ds = (ds.shuffle(int(0.7 * n_samples), seed=seed, reshuffle_each_iteration=False)
          .batch(8, drop_remainder=True).repeat(cfg.epochs + 1))
    t0 = time.perf_counter()
    hist = model.fit(ds, epochs=cfg.epochs, steps_per_epoch=n_samples // 8 - 1, shuffle=False, verbose=0)
    seconds = time.perf_counter() - t0
    training.recalibrate_batch_norm(dec, encode(enc, frames, width))
    return seconds, hist.history["forecasting"][-1], enc, dec


def run_ours(cfg, frames, width, meta, seed, chunk_samples, chunks_per_batch, order, learning_rate):
    with tempfile.TemporaryDirectory() as tmp:
        paths = layout.Paths("bench", Path(tmp) / "data", Path(tmp) / "outputs", run="bench")
        t0 = time.perf_counter()
        model, rows = training.train(
            paths, frames, width, meta["sample_rate"], meta["source_sha256"], latent_dim=3, history=cfg.history,
            window_seconds=cfg.window_seconds, alpha=cfg.alpha, beta=cfg.beta, gamma=0.0, delta=0.0,
            epochs=cfg.epochs,
            chunk_samples=chunk_samples, chunks_per_batch=chunks_per_batch, order=order,
            learning_rate=learning_rate, seed=seed, resume=False, verbose=0)
        seconds = time.perf_counter() - t0
    return seconds, rows[-1]["forecasting"], model.encoder, model.decoder


def path_metrics(cfg, encoder, decoder, frames, width):
    """Reconstruction BCE over all windows, mean turning angle, δ at steps 1 and STEPS."""
    Z = encode(encoder, frames, width).astype(np.float64)
    Zs, _, _ = unit_scale(Z)
    field = KNNField(Zs, cfg.k, exclusion=width)
    delta = divergence(Zs, field, np.arange(0, len(Zs) - 30, cfg.every), cfg.steps).mean(axis=0)
    return {"bce": training.reconstruction_bce(encoder, decoder, frames, width),
            "angle": turning_angle(Z), "delta1": delta[1], f"delta{cfg.steps}": delta[cfg.steps]}


def load_song(name, window_seconds):
    with tempfile.TemporaryDirectory() as tmp:
        paths = layout.Paths(name, Path(tmp), Path(tmp) / "outputs")
        if name == "second":
            audio.write_wav(Path(tmp) / "second.wav", second_song(), synth.SR, "int16")
        dataset.make(name, paths, window_seconds)
        F, T, S, meta = dataset.load(paths)
    frames, _, _ = scale_unit(S.T)
    return frames, window_width(T, window_seconds), meta


def columns(steps):
    """The measured quantities, in the table's order (δ at steps 1 and `steps`)."""
    return ("seconds", "bce", "forecasting", "angle", "delta1", f"delta{steps}")


def table(cfg, name, rows, methods):
    """Markdown rows: mean ± sd over seeds per method, speed-up against the reference's mean."""
    ref = rows["reference"]
    ref_s = np.mean(ref["seconds"])
    steps = cfg.steps
    out = [f"\n**{name}** ({len(ref['seconds'])} seeds, {cfg.epochs} epochs; mean ± sd over seeds, "
           "[min, max] for the reference)\n",
           "| method | fit seconds | speed-up | reconstruction BCE | vs reference | final forecasting loss "
           f"| turning angle (deg) | δ step 1 | δ step {steps} |", "|---|---|---|---|---|---|---|---|---|"]
    for m in methods:
        r = {k: np.asarray(v) for k, v in rows[m].items()}
        cell = (lambda k, f: f"{r[k].mean():{f}} ± {r[k].std():{f}}"
                + (f" [{r[k].min():{f}}, {r[k].max():{f}}]" if m == "reference" else ""))
        out.append(f"| {m} | {cell('seconds', '.1f')} | {ref_s / r['seconds'].mean():.2f}x | {cell('bce', '.4f')} "
                   f"| {r['bce'].mean() / np.mean(ref['bce']):.3f} | {cell('forecasting', '.3f')} "
                   f"| {cell('angle', '.1f')} | {cell('delta1', '.4f')} | {cell(f'delta{steps}', '.4f')} |")
    return out


def verdict(rows, m):
    """Does method m's mean lie within the reference's [min, max] over seeds (or better)?"""
    ref, r = rows["reference"], rows[m]
    checks = []
    for k, label in (("angle", "turning angle"), ("forecasting", "forecasting loss"), ("delta1", "δ step 1")):
        ok = np.mean(r[k]) <= max(ref[k])
        checks.append(f"{label} {'within/better' if ok else 'OUTSIDE'}")
    bce = np.mean(r["bce"]) / np.mean(ref["bce"])
    checks.append(f"BCE {bce:.3f}x ({'ok' if bce <= 1.02 else 'OVER 2%'})")
    checks.append(f"{np.mean(ref['seconds']) / np.mean(r['seconds']):.2f}x faster")
    return f"- {m}: " + "; ".join(checks)


def main():
    cfg = cli.parse(Bench, globals())
    methods = [m.strip() for m in cfg.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m != "reference" and m not in ALTERNATIVES]
    if unknown or "reference" not in methods:
        raise UserError(f"METHODS must include 'reference' and come from {', '.join(ALTERNATIVES)}; "
                            f"unknown: {unknown}")
    lines = [f"# Training benchmark: {cfg.epochs} epochs, {cfg.window_seconds:g} s window, alpha {cfg.alpha:g}, "
             f"seeds 0-{cfg.seeds - 1}", "",
             "Written by `benchmarks/bench_training.py` (one run; every row measured in this run).", "",
             "| method | schedule |", "|---|---|",
             "| reference | the original's: generator, 70% shuffle buffer, batch 8, TimeDistributed encoder |"]
    lines += [f"| {m} | {ALTERNATIVES[m][2]} order, {ALTERNATIVES[m][1]} chunks x {ALTERNATIVES[m][0]} samples, "
              f"lr {ALTERNATIVES[m][3]:g}: {ALTERNATIVES[m][4]} |" for m in methods if m != "reference"]
    verdicts = []
    for song in cfg.songs.split(","):
        frames, width, meta = load_song(song, cfg.window_seconds)
        print(f"{song}: {frames.shape[0]} columns, window {width} x {frames.shape[1]}", flush=True)
        rows = {m: {c: [] for c in columns(cfg.steps)} for m in methods}
        for seed in range(cfg.seeds):
            for m in methods:   # interleaved, so that load on the machine touches every method alike
                if m == "reference":
                    seconds, fc, enc, dec = run_reference(cfg, frames, width, seed)
                else:
                    c, k, order, lr, _ = ALTERNATIVES[m]
                    seconds, fc, enc, dec = run_ours(cfg, frames, width, meta, seed, c, k, order, lr)
                got = {"seconds": seconds, "forecasting": fc, **path_metrics(cfg, enc, dec, frames, width)}
                for c in columns(cfg.steps):
                    rows[m][c].append(float(got[c]))
                print(f"  seed {seed} {m}: " + ", ".join(f"{c} {got[c]:.4g}" for c in columns(cfg.steps)),
                      flush=True)
                keras.backend.clear_session()
        lines += table(cfg, f"{song} ({frames.shape[0]} columns)", rows, methods)
        verdicts += [f"\n{song}:"] + [verdict(rows, m) for m in methods if m != "reference"]
    lines += ["", "Against the reference's spread over seeds (mean of the method <= the reference's max; "
              "lower is better for all three), BCE within 2% of the reference's mean:"] + verdicts
    text = "\n".join(lines) + "\n"
    store.save_text(Path(cfg.out), text)
    print(text)
    readme = Path(__file__).resolve().parents[1] / "README.md"
    spliced = docs.splice(readme, Path(cfg.out).stem, text.split("\n", 1)[1])
    print(f"saved {cfg.out}" + (" and its section of README.md" if spliced else ""))


if __name__ == "__main__":
    cli.run(main)
