"""Benchmark of experiment.py: trials per hour of today's path (the REFERENCE commit's
experiment.py) against this checkout's, on the same grid, in one run.

The reference is taken out of git (`git archive REFERENCE`) into a temporary
folder and run from there with this checkout's Python; then this checkout's
experiment.py runs the same command. Each starts from empty data and output
folders, so every stage is computed (songs synthesised, spectrograms,
training, embedding, divergences, metrics, the report), on a local Ray
instance with WORKERS workers (the experiment's default way: one trial per
core, one TensorFlow thread each). Times are wall-clock seconds of the whole
command, Ray's start included; a trial's CPU seconds (what its worker process
used, recorded by this checkout's trials) below its wall seconds mean that
other work shared the cores. The two runs' trial files are compared metric
by metric: a faster path must give the same numbers.

    .venv/bin/python benchmarks/bench_experiment.py                   # ~10 minutes on 2 cores
    .venv/bin/python benchmarks/bench_experiment.py --compare false --backend jax --workers 8 --section experiment_gpu

Writes the result as Markdown to outputs/bench_experiment.md (and prints it)
and, with --report true, into the README's generated section SECTION.
"""
import json
import math
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dae import cli, config, docs  # noqa: E402

#: today's path: the experiment as committed before the fixed cost per trial was cut (issue 18)
REFERENCE = "1a9d7528b109526373364fe800801c273bcc8a2f"
SONGS = "synth-10,synth-11"   # synthesised from these seeds
SECONDS = 30.0                # each song's length: a real song's 30 s clip
RATE = 44100                  # their sample rate (the experiment's SYNTH_RATE)
VARIANTS = "R,R-F"
SEEDS = "1,2"
EPOCHS = 0                    # 0 = the experiment's default (as the original: 6 for the 0.5 s window)
WORKERS = 2                   # Ray workers (CPUs of the local instance)
COMPARE = True                # run the reference too
BACKEND = ""                  # KERAS_BACKEND of this checkout's run ("" = as installed: tensorflow)
REPORT = True                 # write the README's section
SECTION = "bench_experiment"  # the README's generated section
TARGET = 3.0                  # the figure: this many times the reference's trials per hour


@dataclass(frozen=True)
class Bench(config.Settings):
    """The benchmark's settings; `cli.parse(Bench, globals())` takes their defaults from the constants above."""
    songs: str = config.setting(SONGS, "the grid's songs (synth-<n>: synthesised from seed n)")
    seconds: float = config.setting(SECONDS, "each song's length", unit="s", least=1.0)
    rate: int = config.same_as(config.Experiment, "synth_rate")
    variants: str = config.setting(VARIANTS, "the grid's variants")
    seeds: str = config.setting(SEEDS, "the grid's seeds")
    epochs: int = config.setting(EPOCHS, "training epochs; 0 = the experiment's default (as the original)", least=0)
    workers: int = config.setting(WORKERS, "Ray workers (CPUs of the local Ray instance)", least=1)
    reference: str = config.setting(REFERENCE, "the commit whose experiment.py is today's path")
    compare: bool = config.setting(COMPARE, "also run the reference (false: this checkout only)")
    backend: str = config.setting(BACKEND, "KERAS_BACKEND of this checkout's run; empty = as installed")
    report: bool = config.setting(REPORT, "also write the README's section SECTION")
    section: str = config.setting(SECTION, "the README's generated section")


def run(code, tmp, label, s: Bench, env=None):
    """experiment.py of `code` on the grid from empty folders: its wall seconds, load averages
    and trial files ({key: trial})."""
    cmd = [sys.executable, str(code / "experiment.py"), "--songs", s.songs, "--variants", s.variants,
           "--seeds", s.seeds, "--epochs", str(s.epochs), "--synth-seconds", str(s.seconds),
           "--synth-rate", str(s.rate), "--num-cpus", str(s.workers), "--data-dir", str(tmp / label / "data"),
           "--output-dir", str(tmp / label / "outputs"), "--name", "bench"]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=code, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(code), **(env or {})))
    wall = time.perf_counter() - t0
    after = os.getloadavg()[0]
    print(f"{label}: {wall:.1f} s (load average {load:.1f} before, {after:.1f} after)", flush=True)
    if proc.returncode != 0:
        sys.exit(f"{label} run failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    folder = tmp / label / "outputs" / "experiments" / "bench" / "trials"
    trials = {t["key"]: t for t in (json.loads(p.read_text()) for p in folder.glob("*.json"))}
    return {"wall": wall, "load": (load, after), "trials": trials}


def checkout(commit, folder):
    """The files of `commit` (git archive) in `folder`."""
    folder.mkdir(parents=True)
    archive = folder.parent / f"{commit[:12]}.tar"
    with open(archive, "wb") as f:
        subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT, stdout=f, check=True)
    with tarfile.open(archive) as t:
        t.extractall(folder, filter="data")
    archive.unlink()
    return folder


def metrics_gap(a, b):
    """The largest difference of any metric and δ curve point between two runs' trials of the same keys:
    (absolute, relative, the metric, the trials compared)."""
    from dae.report import METRICS
    worst = (0.0, 0.0, "", 0)
    keys = sorted(set(a) & set(b))
    for k in keys:
        pairs = [(m[0], a[k].get(m[0]), b[k].get(m[0])) for m in METRICS]
        for tag in ("x", "o"):
            for part in ("mean", "std", "baseline_mean"):
                pairs += [(f"curves.{tag}.{part}", x, y) for x, y in zip(a[k]["curves"][tag][part],
                                                                          b[k]["curves"][tag][part])]
        for name, x, y in pairs:
            if x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)):
                continue
            gap = abs(x - y)
            rel = gap / max(abs(x), abs(y))
            if rel > worst[1]:
                worst = (gap, rel, name, len(keys))
    return worst[:3] + (len(keys),)


def describe(r):
    """(median seconds per trial, median CPU seconds per trial or None where the trials do not say,
    worker processes that ran them)."""
    trials = r["trials"].values()
    cpu = [t["cpu_seconds"] for t in trials if "cpu_seconds" in t]
    return (statistics.median(t["seconds"] for t in trials), statistics.median(cpu) if cpu else None,
            len({(t.get("host"), t.get("pid")) for t in trials}))


def main():
    s = cli.parse(Bench, globals())
    n = len(s.songs.split(",")) * len(s.variants.split(",")) * len(s.seeds.split(","))
    env = {"KERAS_BACKEND": s.backend} if s.backend else {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ref = run(checkout(s.reference, tmp / "reference"), tmp, "reference", s) if s.compare else None
        new = run(ROOT, tmp, "new", s, env)
    for r in (ref, new):
        if r is not None and len(r["trials"]) != n:
            sys.exit(f"expected {n} trial files, found {len(r['trials'])}")
    rows, lines = [], []
    for name, r in (("reference", ref), ("new", new)):
        if r is None:
            continue
        median, cpu, workers = describe(r)
        rate = n / r["wall"] * 3600
        what = (f"today's path: experiment.py of {s.reference[:7]}" if name == "reference"
                else "this checkout" + (f" (KERAS_BACKEND={s.backend})" if s.backend else ""))
        ratio = f"{rate / (n / ref['wall'] * 3600):.2f}x" if ref is not None else "-"
        cpu = "not recorded" if cpu is None else f"{cpu:.1f}"
        rows.append(f"| {what} | {r['wall']:.1f} | **{rate:.0f}** | {ratio} | {median:.1f} | {cpu} | {workers} | "
                    f"{r['load'][0]:.1f} / {r['load'][1]:.1f} |")
    backend = s.backend or "tensorflow (as installed)"
    epochs = s.epochs or "the experiment's default number of (as the original)"
    lines += [f"Grid: {len(s.songs.split(','))} synthesised {s.seconds:g} s songs at {s.rate} Hz x {s.variants} x "
              f"seeds {s.seeds}, {epochs} epochs: {n} trials, on a local "
              f"Ray instance with {s.workers} workers (a trial at a time each"
              f"{', one TensorFlow thread' if not s.backend or s.backend == 'tensorflow' else ''}), each path from "
              f"empty folders, one after the other in one run, on a machine with {os.cpu_count()} CPUs; Keras "
              f"backend {backend}.", "",
              "| path | wall seconds | trials per hour | against today's | median seconds per trial | "
              "median CPU seconds per trial (its process) | worker processes | load average before / after |",
              "|---|---|---|---|---|---|---|---|", *rows, ""]
    if ref is not None:
        ratio = ref["wall"] / new["wall"]
        gap, rel, name, compared = metrics_gap(ref["trials"], new["trials"])
        same = ("every metric and δ curve of the " + f"{compared} trials is the same in both runs" if rel == 0
                else f"the largest difference of a metric or δ curve point over the {compared} trials is "
                     f"{gap:.3g} ({rel:.2g} relative, {name})")
        mean_load = statistics.mean([*ref["load"], *new["load"]])
        lines.append(f"This checkout runs {ratio:.2f}x the trials per hour of today's path "
                     f"({'at least' if ratio >= TARGET else 'short of'} the {TARGET:g}x the issue asks for); {same}. "
                     f"The load average (1 minute, whole machine, {os.cpu_count()} CPUs) was {mean_load:.1f} on "
                     f"average at the runs' starts and ends"
                     + (": other work shared the cores, so wall seconds per trial are above CPU seconds."
                        if mean_load > os.cpu_count() else "."))
    text = "\n".join(lines) + "\n"
    out = ROOT / "outputs" / "bench_experiment.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    spliced = s.report and docs.splice(ROOT / "README.md", s.section, text)
    print(f"saved {out}" + (f" and the README's section {s.section}" if spliced else ""))


if __name__ == "__main__":
    main()
