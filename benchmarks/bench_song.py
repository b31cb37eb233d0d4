"""Benchmark of `make demo SONG=`: a 4-minute song through pipeline.py, today's (the REFERENCE commit's
pipeline.py) against this checkout's, in one run; then this checkout's reruns.

The reference is taken out of git (`git archive REFERENCE`) into a temporary
folder and run from there with this checkout's Python, the command `make demo
SONG=...` runs (`pipeline.py --song ...`, every default); then this checkout's
pipeline.py runs the same command. Each starts from empty data and output
folders. Then, in this checkout's folders: the same command again (nothing
changed: every stage should say it was skipped), and the same with
`--alpha 0.002` (only the stages of that new run should run). Times are
wall-clock seconds of the whole command; CPU seconds are every process's of it
(the frame workers and ffmpeg included). What the runs give is compared: the
turning angle and δ at step 1 of R-F and R, and the latent LSTM's held-out
MSE.

    .venv/bin/python benchmarks/bench_song.py                        # ~25 minutes on 2 cores
    .venv/bin/python benchmarks/bench_song.py --song path/to/real.ogg --report false --out outputs/bench_song_real.md

Writes the result as Markdown to OUT (and prints it) and, with --report true,
into the README's generated section SECTION.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pipeline  # noqa: E402
from bench_experiment import TreeCPU, checkout  # noqa: E402
from dae import audio, cli, config, docs, layout, synth  # noqa: E402
from dae.clock import clock  # noqa: E402

#: today's path: pipeline.py as committed before issue 20's speed work
REFERENCE = "7a237502cb802bf59b343dc95b214e9a6bc311aa"
SONG = ""                     # a song file; "" = synthesise one (dae.synth.song(SEED, SECONDS))
SEED = 4
SECONDS = 240.0
COMPARE = True                # run the reference too
REPORT = True                 # write the README's section
OUT = "benchmarks/results/bench_song.md"
SECTION = "bench_song"
TARGET_S = 300.0              # the figure: the whole command under 5 minutes
RERUN_TARGET_S = 15.0         # and again with nothing changed under 15 s


@dataclass(frozen=True)
class Bench(config.Settings):
    """The benchmark's settings; `cli.parse(Bench, globals())` takes their defaults from the constants above."""
    song: str = config.setting(SONG, "a song file to run; empty = synthesise one from SEED, SECONDS long")
    seed: int = config.setting(SEED, "the synthesised song's seed (dae.synth.song)", least=0)
    seconds: float = config.setting(SECONDS, "the synthesised song's length", unit="s", least=1.0)
    reference: str = config.setting(REFERENCE, "the commit whose pipeline.py is today's")
    compare: bool = config.setting(COMPARE, "also run the reference (false: this checkout only)")
    report: bool = config.setting(REPORT, "also write the README's section SECTION")
    out: str = config.setting(OUT, "the Markdown report")
    section: str = config.setting(SECTION, "the README's generated section")


def run(code, song, folder, *extra):
    """pipeline.py of `code` on `song` with `extra` settings, into `folder`: wall and CPU seconds,
    load averages, the stage headers and what each stage printed."""
    cmd = [sys.executable, str(code / "pipeline.py"), "--song", str(song), "--data-dir", str(folder / "data"),
           "--output-dir", str(folder / "outputs"), *map(str, extra)]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=code, stdout=out, stderr=err, text=True,
                                env=dict(os.environ, PYTHONPATH=str(code)))
        cpu = TreeCPU(proc.pid)
        cpu.start()
        code_ = proc.wait()
        wall = time.perf_counter() - t0
        cpu = cpu.stop()
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    after = os.getloadavg()[0]
    print(f"{code.name} {' '.join(map(str, extra))}: {wall:.1f} s, {cpu or 0:.0f} CPU s "
          f"(load average {load:.1f} before, {after:.1f} after)", flush=True)
    if code_ != 0:
        sys.exit(f"pipeline.py of {code} failed: {(stderr.strip().splitlines() or ['?'])[-1]}")
    return {"wall": wall, "cpu": cpu, "load": (load, after), "stages": pipeline.stage_lines(stdout)}


def skipped(stages):
    """The stages (titles) whose every line says they kept their outputs."""
    return [t for t, lines in stages.items() if lines and all(l.endswith("skipped") for l in lines)]


def results(folder, song):
    """{run label: (turning angle, δ at step 1, the latent LSTM's held-out MSE)} of a pipeline's runs."""
    data = folder / "data" / layout.song_name(song) / "runs"
    out = {}
    for run in sorted(data.iterdir()):
        label = "R" if "_R_a0_" in run.name else "R-F" if "_R-F_a0.001_" in run.name else None
        div = sorted(run.glob("divergence_*.npz.json"))
        lstm = run / "latent_lstm.keras.json"
        if label is None or not div or not lstm.exists():
            continue
        d, m = json.loads(div[0].read_text()), json.loads(lstm.read_text())
        out[label] = (d["turning_angle_deg"], d["delta_at"]["1"], m["held_out"]["mse"])
    return out


def seconds(s):
    return f"{s:.0f} s ({clock(s, decimals=0)})"


def main():
    s = cli.parse(Bench, globals())
    with tempfile.TemporaryDirectory(prefix="bench_song_") as tmp:
        tmp = Path(tmp)
        if s.song:
            song = Path(s.song).resolve()
            what = f"{song.name}"
        else:
            song = tmp / f"synth{s.seconds / 60:.0f}min.wav"
            audio.write_wav(song, synth.song(s.seed, s.seconds), synth.SR)
            what = f"a synthesised {clock(s.seconds, decimals=0)} song (dae.synth.song({s.seed}, {s.seconds:g}))"
        rows = {}
        if s.compare:
            ref = checkout(s.reference, tmp / "reference")
            rows["today"] = run(ref, song, tmp / "ref")
        new = tmp / "new"
        rows["new"] = run(ROOT, song, new)
        rows["again"] = run(ROOT, song, new)
        rows["alpha"] = run(ROOT, song, new, "--alpha", 0.002)
        made = {"today": results(tmp / "ref", song) if s.compare else {}, "new": results(new, song)}
    text = report(s, what, rows, made)
    print(text)
    out = ROOT / s.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    spliced = s.report and docs.splice(ROOT / "README.md", s.section, text)
    print(f"saved {out}" + (f" and the README's section {s.section}" if spliced else ""))


def report(s, what, rows, made):
    cpus = os.cpu_count()
    new, again, alpha = rows["new"], rows["again"], rows["alpha"]
    lines = [f"Song: {what}; `pipeline.py --song <it>` (what `make demo SONG=` runs, every default) from empty "
             f"folders, on a machine with {cpus} CPUs, in one run; CPU seconds are every process's of the command.",
             "", "| command | wall | CPU seconds | against today's | load average before / after | stages |",
             "|---|---|---|---|---|---|"]
    base = rows.get("today")

    def row(name, r, note):
        ratio = f"{base['wall'] / r['wall']:.2f}x as fast" if base and r is not base else ("1.00x" if base else "")
        lines.append(f"| {name} | {seconds(r['wall'])} | {r['cpu'] or 0:.0f} | {ratio} | "
                     f"{r['load'][0]:.1f} / {r['load'][1]:.1f} | {note} |")
    if base:
        row(f"today's: pipeline.py of {s.reference[:7]}", base, f"{len(base['stages'])} run")
    row("this checkout", new, f"{len(new['stages'])} run")
    kept = skipped(again["stages"])
    row("the same again, nothing changed", again, f"{len(kept)} of {len(again['stages'])} skipped")
    ran = [t for t in alpha["stages"] if t not in skipped(alpha["stages"])]
    new_run = [t for t in ran if "_a0.002_" in t]
    row("again with `--alpha 0.002`", alpha,
        f"{len(ran)} ran: {len(new_run)} of the new run's"
        + (f", and {', '.join(t for t in ran if t not in new_run)}" if len(ran) > len(new_run) else ""))
    lines.append("")
    verdict = "reached" if new["wall"] < TARGET_S else "NOT reached"
    lines.append(f"The whole command took {seconds(new['wall'])}"
                 + (f" against today's {seconds(base['wall'])}" if base else "")
                 + f": under {TARGET_S / 60:.0f} minutes {verdict}. With nothing changed it took "
                 f"{again['wall']:.1f} s (under {RERUN_TARGET_S:.0f} s "
                 f"{'reached' if again['wall'] < RERUN_TARGET_S else 'NOT reached'}), "
                 f"{len(kept)} of its {len(again['stages'])} stages saying they were skipped.")
    if made["today"] and made["new"]:
        lines += ["", "What the runs give (today's → this checkout's):", "",
                  "| run | turning angle (deg) | δ at step 1 | latent LSTM held-out MSE |", "|---|---|---|---|"]
        for label in ("R-F", "R"):
            a, b = made["today"].get(label), made["new"].get(label)
            if a and b:
                lines.append(f"| {label} | {a[0]:.3f} → {b[0]:.3f} | {a[1]:.4g} → {b[1]:.4g} | {a[2]:.4g} → {b[2]:.4g} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    cli.run(main)
