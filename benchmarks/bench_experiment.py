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
import threading
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
REPEATS = 1                   # runs of each path, by turns
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
    repeats: int = config.setting(REPEATS, "runs of each path, by turns (the fastest is shown)", least=1)
    backend: str = config.setting(BACKEND, "KERAS_BACKEND of this checkout's run; empty = as installed")
    report: bool = config.setting(REPORT, "also write the README's section SECTION")
    section: str = config.setting(SECTION, "the README's generated section")


class TreeCPU(threading.Thread):
    """The CPU seconds of a process and all its descendants (Ray's servers and workers), read from
    /proc every `every` seconds while it runs (each process's last reading, so a process that ends
    between two readings loses at most `every` seconds). Linux only; `seconds` is None elsewhere."""

    def __init__(self, root, every=0.25):
        super().__init__(daemon=True)
        self.root, self.every, self.ticks, self.done = root, every, {}, threading.Event()
        self.works = Path("/proc/self/stat").exists()

    def run(self):
        while self.works and not self.done.is_set():
            self.sample()
            self.done.wait(self.every)

    def sample(self):
        procs, children = {}, {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                text = (Path("/proc") / name / "stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()      # after "pid (command) "
            ppid, ticks, started = int(fields[1]), int(fields[11]) + int(fields[12]), fields[19]
            procs[int(name)] = (ticks, started)
            children.setdefault(ppid, []).append(int(name))
        todo = [self.root]
        while todo:
            pid = todo.pop()
            if pid in procs:
                self.ticks[(pid, procs[pid][1])] = procs[pid][0]
            todo += children.get(pid, [])

    def stop(self):
        self.done.set()
        self.join()
        return sum(self.ticks.values()) / os.sysconf("SC_CLK_TCK") if self.works else None


def run(code, tmp, label, s: Bench, env=None):
    """experiment.py of `code` on the grid from empty folders: its wall seconds, load averages
    and trial files ({key: trial})."""
    cmd = [sys.executable, str(code / "experiment.py"), "--songs", s.songs, "--variants", s.variants,
           "--seeds", s.seeds, "--epochs", str(s.epochs), "--synth-seconds", str(s.seconds),
           "--synth-rate", str(s.rate), "--num-cpus", str(s.workers), "--data-dir", str(tmp / label / "data"),
           "--output-dir", str(tmp / label / "outputs"), "--name", "bench"]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=code, stdout=out, stderr=err, text=True,
                                env=dict(os.environ, PYTHONPATH=str(code), **(env or {})))
        cpu = TreeCPU(proc.pid)
        cpu.start()
        code_ = proc.wait()
        wall = time.perf_counter() - t0
        cpu = cpu.stop()
        err.seek(0)
        stderr = err.read()
    after = os.getloadavg()[0]
    print(f"{label}: {wall:.1f} s, {cpu or 0:.0f} CPU s (load average {load:.1f} before, {after:.1f} after)",
          flush=True)
    if code_ != 0:
        sys.exit(f"{label} run failed: {(stderr.strip().splitlines() or ['?'])[-1]}")
    folder = tmp / label / "outputs" / "experiments" / "bench" / "trials"
    trials = {t["key"]: t for t in (json.loads(p.read_text()) for p in folder.glob("*.json"))}
    return {"wall": wall, "cpu": cpu, "load": (load, after), "trials": trials}


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
    paths = ([("reference", None)] if s.compare else []) + [("new", ROOT)]
    runs = {name: [] for name, _ in paths}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        code = {name: where or checkout(s.reference, tmp / "reference") for name, where in paths}
        for i in range(s.repeats):                           # the paths by turns, so that both see the same load
            for name, _ in paths:
                runs[name].append(run(code[name], tmp, f"{name}-{i + 1}", s, env if name == "new" else None))
    for name, rs in runs.items():
        if any(len(r["trials"]) != n for r in rs):
            sys.exit(f"{name}: expected {n} trial files, found {[len(r['trials']) for r in rs]}")
    best = {name: min(rs, key=lambda r: r["wall"]) for name, rs in runs.items()}
    cpus = {name: min((r["cpu"] for r in rs if r["cpu"]), default=None) for name, rs in runs.items()}
    ref, new = best.get("reference"), best["new"]
    rows = []
    for name, r in best.items():
        median, trial_cpu, workers = describe(r)
        what = (f"today's path: experiment.py of {s.reference[:7]}" if name == "reference"
                else "this checkout" + (f" (KERAS_BACKEND={s.backend})" if s.backend else ""))
        per_hour, per_cpu_hour = n / r["wall"] * 3600, (n / cpus[name] * 3600 if cpus[name] else None)
        against = f"{ref['wall'] / r['wall']:.2f}x" if ref is not None else "-"
        against_cpu = (f"{cpus['reference'] / cpus[name]:.2f}x" if ref is not None and cpus[name]
                       and cpus["reference"] else "-")
        rows.append(f"| {what} | {r['wall']:.1f} | **{per_hour:.0f}** | **{against}** | "
                    + (f"{cpus[name]:.0f} | {per_cpu_hour:.0f} | {against_cpu}" if cpus[name] else "n/a | n/a | -")
                    + f" | {median:.1f} / " + ("not recorded" if trial_cpu is None else f"{trial_cpu:.1f}")
                    + f" | {workers} | {r['load'][0]:.1f} / {r['load'][1]:.1f} |")
    backend = s.backend or "tensorflow (as installed)"
    epochs = f"{s.epochs} epochs" if s.epochs else "the experiment's default epochs (as the original)"
    lines = [f"Grid: {len(s.songs.split(','))} synthesised {s.seconds:g} s songs at {s.rate} Hz x {s.variants} x "
             f"seeds {s.seeds}, {epochs}: {n} trials, on a local Ray instance with {s.workers} workers "
             f"(a trial at a time each{', one TensorFlow thread' if backend.startswith('tensorflow') else ''}), "
             f"each path from empty folders, {'by turns, ' if len(paths) > 1 else ''}"
             f"{'once' if s.repeats == 1 else f'{s.repeats} times (the fastest shown)'} in one run, on a machine "
             f"with {os.cpu_count()} CPUs; Keras backend {backend}. CPU "
             "seconds are those of every process of the run (Ray's servers and workers, the driver).", "",
             "| path | wall seconds | trials per hour | against today's | CPU seconds | trials per CPU hour | "
             "against today's | median seconds per trial, wall / CPU | worker processes | "
             "load average before / after |",
             "|---|---|---|---|---|---|---|---|---|---|", *rows, ""]
    if ref is not None:
        ratio = ref["wall"] / new["wall"]
        gap, rel, name, compared = metrics_gap(ref["trials"], new["trials"])
        same = (f"every metric and δ curve of the {compared} trials is the same in both runs" if rel == 0
                else f"the largest difference of a metric or δ curve point over the {compared} trials is "
                     f"{gap:.3g} ({rel:.2g} relative, {name})")
        loads = [x for rs in runs.values() for r in rs for x in r["load"]]
        cpu_ratio = (f", {cpus['reference'] / cpus['new']:.2f}x per CPU second" if cpus["reference"] and cpus["new"]
                     else "")
        lines.append(f"This checkout runs {ratio:.2f}x the trials per hour of today's path{cpu_ratio} "
                     f"({'at least' if ratio >= TARGET else 'short of'} the {TARGET:g}x the issue asks for); {same}. "
                     f"The load average (1 minute, whole machine, {os.cpu_count()} CPUs) was "
                     f"{statistics.mean(loads):.1f} on average at the runs' starts and ends"
                     + (": other work shared the cores, so a trial's wall seconds are above its CPU seconds and "
                        "the wall figures move with that work." if statistics.mean(loads) > os.cpu_count() else "."))
    text = "\n".join(lines) + "\n"
    out = ROOT / "outputs" / "bench_experiment.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    spliced = s.report and docs.splice(ROOT / "README.md", s.section, text)
    print(f"saved {out}" + (f" and the README's section {s.section}" if spliced else ""))


if __name__ == "__main__":
    main()
