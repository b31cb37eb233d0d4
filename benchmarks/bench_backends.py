"""Benchmark: milliseconds per training step of this project's model on each installed Keras backend.

The model is train_model.py's default (0.5 s window, LATENT_DIM, HISTORY, 1 chunk x 8 samples per step,
Adam), trained on the spectrogram of a 30 s song synthesised by `dae.synth.song`. Each backend runs
in its own process, one after the other (KERAS_BACKEND set), through `dae.training.build` and
`model.fit` on the default plan, as a run does:

- first call: the seconds of the first fit of WARMUP steps (tracing and compiling included);
- ms / step: the median over REPEATS fits of STEPS steps each, after that warm-up.

Each backend is measured with the LSTM unrolled and as a loop (`dae.model.UNROLL` picks one per
backend; TensorFlow's stays unrolled, its reference). JAX and TensorFlow run the training's
steps per call into the graph (the largest divisor of the epoch up to 16, as `training.train`);
PyTorch runs one (Keras's torch trainer takes no more). Writes benchmarks/results/bench_backends.md.

    .venv/bin/python benchmarks/bench_backends.py [--backends tensorflow,jax,torch] [--steps 64]

Every setting below can be given on the command line (``--help`` lists them).
"""
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BACKENDS = "tensorflow,jax,torch"   # those not installed are skipped (and said so)
SONG_SECONDS = 30.0
SONG_SEED = 0
WARMUP = 32          # steps of the first fit (compiles)
STEPS = 96           # steps of each timed fit (the first call of each is not timed)
REPEATS = 3          # timed fits; the median is reported
UNROLLS = "true,false"
OUT = "benchmarks/results/bench_backends.md"


def child(backend, unroll, steps, warmup, repeats, seconds, seed):
    """In a process whose KERAS_BACKEND is `backend`: the timings of one configuration (a dict)."""
    import numpy as np

    from dae import audio, config, dataset, layout, model as model_module, synth, training
    from dae.spectrogram import scale_unit, window_width
    import keras
    import settings
    import train_model

    assert keras.backend.backend() == backend, (keras.backend.backend(), backend)
    model_module.UNROLL[backend] = unroll
    cfg = config.Training.from_constants(settings, train_model)
    tmp = Path(tempfile.mkdtemp())
    song = tmp / "song.wav"
    audio.write_wav(song, synth.song(seed, seconds), synth.SR, "int16")
    paths = layout.Paths(song, tmp / "data", tmp / "out")
    dataset.make(song, paths, cfg.window_seconds)
    _, T, S, meta = dataset.load(paths)
    frames, _, _ = scale_unit(S.T)
    width = window_width(T, cfg.window_seconds)
    n_samples = training.check_length(frames.shape[0], width, cfg.history, meta["sample_rate"])
    per_epoch = training.schedule(n_samples, cfg.chunk_samples, cfg.chunks_per_batch, 1, seed, cfg.order).shape[1]
    per_call = max(d for d in range(1, 17) if per_epoch % d == 0)     # as training.train
    keras.utils.set_random_seed(seed)
    weights = {name: getattr(cfg, name) for name in config.LOSS_WEIGHTS.values()}
    model = training.build(frames, width=width, latent_dim=cfg.latent_dim, history=cfg.history,
                           window_seconds=cfg.window_seconds, chunk_samples=cfg.chunk_samples,
                           learning_rate=cfg.learning_rate, steps_per_execution=per_call, **weights)
    spe = model.steps_per_execution
    warmup, steps = (max(spe, (n // spe) * spe) for n in (warmup, steps))
    total = warmup + repeats * steps
    plan = training.plan(n_samples, cfg.chunk_samples, cfg.chunks_per_batch, -(-total // per_epoch), seed,
                         cfg.order).reshape(-1, cfg.chunks_per_batch)[:total]

    class Ends(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ends.append(time.perf_counter())

    def fit(rows):
        ends.clear()
        t = time.perf_counter()
        model.fit(rows.reshape(-1), batch_size=rows.shape[1], epochs=1, steps_per_epoch=len(rows), shuffle=False,
                  verbose=0, callbacks=[Ends()])
        return time.perf_counter() - t

    ends = []
    first = fit(plan[:warmup])
    ms = []
    for i in range(repeats):     # from the first call's end to the last's: the steps alone, not fit's set-up
        fit(plan[warmup + i * steps:warmup + (i + 1) * steps])
        ms.append(1000 * (ends[-1] - ends[0]) / (steps - spe))
    ms.sort()
    losses = [float(model.trackers[name].result()) for name in ("loss",)]
    return dict(backend=backend, unroll=unroll, steps_per_execution=spe, first_s=first, ms_per_step=ms[len(ms) // 2],
                ms_all=ms, windows=int(frames.shape[0] - width + 1), width=int(width), height=int(frames.shape[1]),
                batch=cfg.chunks_per_batch, history=cfg.history, latent_dim=cfg.latent_dim, loss=losses[0],
                version=_version(backend))


def _version(backend):
    import keras
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    return f"keras {keras.__version__}, {module} {__import__(module).__version__}"


def installed(backend):
    return importlib.util.find_spec(backend) is not None


def main():
    from dae import cli, config

    @dataclass(frozen=True)
    class Bench(config.Settings):
        """The benchmark's settings."""
        backends: str = config.setting(BACKENDS, "comma-separated Keras backends (tensorflow, jax, torch)")
        song_seconds: float = config.setting(SONG_SECONDS, "length of the synthesised song", unit="s", least=5.0)
        song_seed: int = config.setting(SONG_SEED, "dae.synth.song's seed, also the training seed", least=0)
        warmup: int = config.setting(WARMUP, "steps of the first (compiling) fit", least=1)
        steps: int = config.setting(STEPS, "steps of each timed fit", least=1)
        repeats: int = config.setting(REPEATS, "timed fits per configuration (the median is reported)", least=1)
        unrolls: str = config.setting(UNROLLS, "comma-separated LSTM unroll settings to measure (true, false)")
        out: str = config.setting(OUT, "the table's Markdown file")

    cfg = cli.parse(Bench, globals())
    rows, skipped = [], []
    t0 = time.time()
    for backend in [b.strip() for b in cfg.backends.split(",") if b.strip()]:
        if not installed(backend):
            skipped.append(backend)
            continue
        for unroll in [u.strip().lower() == "true" for u in cfg.unrolls.split(",") if u.strip()]:
            args = [sys.executable, __file__, "--child", backend, str(unroll), str(cfg.steps), str(cfg.warmup),
                    str(cfg.repeats), str(cfg.song_seconds), str(cfg.song_seed)]
            env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT))
            proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            if proc.returncode or not lines:
                rows.append(dict(backend=backend, unroll=unroll, error=(proc.stderr.strip().splitlines() or ["?"])[-1]))
            else:
                rows.append(json.loads(lines[-1]))
            r = rows[-1]
            print(f"{backend:10s} unroll={unroll!s:5s} " + (f"{r['ms_per_step']:.1f} ms/step, first call {r['first_s']:.1f} s"
                                                          if "error" not in r else f"failed: {r['error']}"), flush=True)
    write(cfg, rows, skipped, time.time() - t0)


def write(cfg, rows, skipped, seconds):
    ok = [r for r in rows if "error" not in r]
    tf_ms = next((r["ms_per_step"] for r in ok if r["backend"] == "tensorflow" and r["unroll"]), None)
    lines = ["# Training step time by Keras backend", "",
             f"Written by `benchmarks/bench_backends.py` (one run, {seconds:.0f} s; every row measured in this run, "
             f"one process per configuration, in turn) on {platform.machine()} with {os.cpu_count()} CPUs.", ""]
    if ok:
        r = ok[0]
        lines += [f"Model: train_model.py's defaults, a {cfg.song_seconds:g} s song of `dae.synth.song({cfg.song_seed})` "
                  f"({r['windows']} windows of {r['width']} x {r['height']}), {r['batch']} samples x "
                  f"({r['history']} + 1) windows per step, latent {r['latent_dim']}; ms / step is the median of "
                  f"{cfg.repeats} fits of {cfg.steps} steps after a first fit of {cfg.warmup} steps.", ""]
    lines += ["| backend | LSTM unrolled | steps per call | ms / step | vs TensorFlow | first call (s) | versions |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['unroll']} | | failed: {r['error']} | | | |")
            continue
        ratio = f"{tf_ms / r['ms_per_step']:.2f}x" if tf_ms else ""
        lines.append(f"| {r['backend']} | {r['unroll']} | {r['steps_per_execution']} | {r['ms_per_step']:.1f} "
                     f"({min(r['ms_all']):.1f}-{max(r['ms_all']):.1f}) | {ratio} | {r['first_s']:.1f} | {r['version']} |")
    if skipped:
        lines += ["", f"Not installed, not measured: {', '.join(skipped)}."]
    from dae import docs, store
    out = ROOT / cfg.out
    text = "\n".join(lines) + "\n"
    store.save_text(out, text)
    spliced = docs.splice(ROOT / "README.md", "bench_backends", text.split("\n", 1)[1])
    print(f"wrote {out}" + (" and the README's section bench_backends" if spliced else ""))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        b, u, s, w, rep, sec, seed = sys.argv[2:9]
        print(json.dumps(child(b, u == "True", int(s), int(w), int(rep), float(sec), int(seed))))
    else:
        from dae import cli
        cli.run(main)
