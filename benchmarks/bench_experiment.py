"""Benchmark of experiment.py: the same small grid on 2 Ray workers against one
trial at a time in one process (TensorFlow free to use every core), in one run.

Each way starts from empty data and output folders, so every stage is computed
(songs synthesised, spectrograms, training, embedding, divergence, metrics);
the times are wall-clock seconds of the whole command, Ray's start included.
Writes the result as Markdown to outputs/bench_experiment.md (and prints it).

    .venv/bin/python benchmarks/bench_experiment.py
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SONGS = "synth-10,synth-11"   # synthesised from these seeds
SECONDS = 20.0                # each song's length
RATE = 22050                  # sample rate of the songs
VARIANTS = "R,R-F"
SEEDS = "1,2"
EPOCHS = 2
WORKERS = 2                   # Ray workers (CPUs of the local instance)
REPORT = ROOT / "outputs" / "bench_experiment.md"


def run(tmp, label, *extra):
    cmd = [sys.executable, str(ROOT / "experiment.py"), "--songs", SONGS, "--variants", VARIANTS, "--seeds", SEEDS,
           "--epochs", str(EPOCHS), "--synth-seconds", str(SECONDS), "--synth-rate", str(RATE),
           "--data-dir", str(tmp / label / "data"), "--output-dir", str(tmp / label / "outputs"),
           "--name", "bench", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{label} run failed: {proc.stderr.strip().splitlines()[-1:]}")
    trials = [json.loads(p.read_text()) for p in (tmp / label / "outputs" / "experiments" / "bench" / "trials").glob("*.json")]
    return wall, trials


def main():
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ray_wall, ray_trials = run(tmp, "ray", "--num-cpus", str(WORKERS), "--threads-per-trial", "1")
        seq_wall, seq_trials = run(tmp, "sequential", "--use-ray", "false")
    n = len(ray_trials)
    ray_busy = sum(t["seconds"] for t in ray_trials)
    seq_busy = sum(t["seconds"] for t in seq_trials)
    by_key = {t["key"]: t for t in seq_trials}
    gap = max(abs(t["turning_angle"] - by_key[t["key"]]["turning_angle"]) for t in ray_trials)
    lines = [
        f"Grid: {len(SONGS.split(','))} synthesised {SECONDS:g} s songs at {RATE} Hz x {VARIANTS} x seeds {SEEDS}, "
        f"{EPOCHS} epochs: {n} trials, each from empty folders. Machine: {os.cpu_count()} CPUs.",
        "",
        "| way | wall seconds | sum of per-trial seconds | speed-up |",
        "|---|---|---|---|",
        f"| one trial at a time in one process (TensorFlow uses every core) | {seq_wall:.1f} | {seq_busy:.1f} | 1.00x |",
        f"| Ray, {WORKERS} workers, 1 TensorFlow thread per trial | {ray_wall:.1f} | {ray_busy:.1f} | "
        f"**{seq_wall / ray_wall:.2f}x** |",
        "",
        f"Largest difference of a trial's turning angle between the two ways: {gap:.2g} degrees "
        f"(1 against 2 TensorFlow threads sum in different orders). Per-trial seconds on Ray are each worker's "
        f"own time (they overlap); the Ray wall time includes starting the instance and its workers "
        f"(each worker imports TensorFlow once).",
    ]
    text = "\n".join(lines) + "\n"
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text)
    print(text)
    print(f"saved {REPORT}")


if __name__ == "__main__":
    main()
