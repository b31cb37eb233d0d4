"""Benchmark of experiment.py: the same small grid on 2 Ray workers against one
trial at a time in one process (TensorFlow free to use every core), in one run;
and, to show what limits the speed-up, one trial at a time with one
TensorFlow thread (what each Ray worker gets).

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
sys.path.insert(0, str(ROOT))

from dae import docs  # noqa: E402

SONGS = "synth-10,synth-11"   # synthesised from these seeds
SECONDS = 30.0                # each song's length
RATE = 22050                  # sample rate of the songs
VARIANTS = "R,R-F"
SEEDS = "1,2"
EPOCHS = 2
WORKERS = 2                   # Ray workers (CPUs of the local instance)
REPORT = ROOT / "outputs" / "bench_experiment.md"
LOADS = {}
LOAD_VALUES = []


def run(tmp, label, *extra, env=None):
    cmd = [sys.executable, str(ROOT / "experiment.py"), "--songs", SONGS, "--variants", VARIANTS, "--seeds", SEEDS,
           "--epochs", str(EPOCHS), "--synth-seconds", str(SECONDS), "--synth-rate", str(RATE),
           "--data-dir", str(tmp / label / "data"), "--output-dir", str(tmp / label / "outputs"),
           "--name", "bench", *extra]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})))
    wall = time.perf_counter() - t0
    after = os.getloadavg()[0]
    print(f"{label}: {wall:.1f} s (load average {load:.1f} before, {after:.1f} after)", flush=True)
    if proc.returncode != 0:
        sys.exit(f"{label} run failed: {proc.stderr.strip().splitlines()[-1:]}")
    trials = [json.loads(p.read_text()) for p in (tmp / label / "outputs" / "experiments" / "bench" / "trials").glob("*.json")]
    LOADS[label] = f"{load:.1f} / {after:.1f}"
    LOAD_VALUES.extend([load, after])
    return wall, {t["key"]: t for t in trials}


def main():
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        seq_wall, seq = run(tmp, "sequential", "--use-ray", "false")
        ray_wall, ray = run(tmp, "ray", "--num-cpus", str(WORKERS), "--threads-per-trial", "1")
        one_wall, one = run(tmp, "sequential-1-thread", "--use-ray", "false",
                            env={"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"})

    per_worker = {}
    for t in ray.values():
        per_worker[t.get("pid")] = per_worker.get(t.get("pid"), 0.0) + t["seconds"]
    worker_busy = max(per_worker.values())
    mean_load = sum(LOAD_VALUES) / len(LOAD_VALUES)

    def busy(trials):
        return sum(t["seconds"] for t in trials.values())

    def gap(a, b):
        return max(abs(a[k]["turning_angle"] - b[k]["turning_angle"]) for k in a)
    lines = [
        f"Grid: {len(SONGS.split(','))} synthesised {SECONDS:g} s songs at {RATE} Hz x {VARIANTS} x seeds {SEEDS}, "
        f"{EPOCHS} epochs: {len(ray)} trials, each way from empty folders, on a machine with {os.cpu_count()} CPUs.",
        "",
        "| way | wall seconds | sum of per-trial seconds | speed-up over one at a time | load average before / after |",
        "|---|---|---|---|---|",
        f"| one trial at a time in one process, TensorFlow's default threads (every core) | {seq_wall:.1f} | "
        f"{busy(seq):.1f} | 1.00x | {LOADS['sequential']} |",
        f"| **Ray, {WORKERS} workers, 1 TensorFlow thread per trial** | {ray_wall:.1f} | {busy(ray):.1f} | "
        f"**{seq_wall / ray_wall:.2f}x** | {LOADS['ray']} |",
        f"| one trial at a time in one process, 1 TensorFlow thread | {one_wall:.1f} | {busy(one):.1f} | "
        f"{seq_wall / one_wall:.2f}x | {LOADS['sequential-1-thread']} |",
        "",
        f"Ray against one-thread trials one at a time: {one_wall / ray_wall:.2f}x. What limits the speed-up: "
        f"(1) TensorFlow already runs one trial on several threads: a trial took {busy(seq) / busy(one):.2f}x "
        f"the time with its default threads that it took with one; (2) Ray's start, its workers' TensorFlow "
        f"import and the last trial's tail: {ray_wall - worker_busy:.1f} s of the Ray wall time were outside the "
        f"busiest worker's trials; (3) the machine is shared: the load average (1 minute, whole machine, "
        f"{os.cpu_count()} CPUs) was {mean_load:.1f} on average at the runs' ends and starts, "
        f"{'so other processes competed for the same cores and two workers did not get two cores to themselves' if mean_load > os.cpu_count() else 'so the cores were mostly free for these runs'}. "
        f"Largest difference of a trial's turning angle: {gap(ray, one):.2g} degrees between Ray and one-thread "
        f"trials (same threads), {gap(ray, seq):.2g} degrees between Ray and the default threads (sums in another "
        f"order change training).",
    ]
    text = "\n".join(lines) + "\n"
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text)
    print(text)
    spliced = docs.splice(ROOT / "README.md", "bench_experiment", text)
    print(f"saved {REPORT}" + (" and its section of README.md" if spliced else ""))


if __name__ == "__main__":
    main()
