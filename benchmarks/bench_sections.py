"""Benchmark of section detection: boundaries found from the music (dae.sections, novelty on the
spectrogram's self-similarity) against fixed blocks, on synthesised songs whose section changes
are known (`dae.synth.song(seed, seconds, return_sections=True)`: 3 or 4 sections, A B A or
A B C A, each with its own bass line, chords and hats over the same drums).

A found boundary is a hit when it lies within TOLERANCE s of a true one, matched one to one.
Recall: the share of true changes found; precision: the share of found boundaries that are true;
F1 their harmonic mean. The seeds here are not the ones the detector's constants were chosen on
(0-7): they are held out.

    .venv/bin/python benchmarks/bench_sections.py          # about a minute

Writes benchmarks/results/bench_sections.md (and prints it) and, with --report true, the
README's generated section bench_sections.
"""
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dae import cli, config, docs, sections, spectrogram, synth, store  # noqa: E402

SEEDS = "100-119"             # held out: the detector's constants were chosen on seeds 0-7
LENGTHS = "45,90,150,240"     # each seed's song at these lengths (s)
TOLERANCE = 1.0               # a hit lies this close to a true change (s)
BLOCKS = "15,30"              # fixed blocks to compare against (s); 30 is the former default
OUT = "benchmarks/results/bench_sections.md"
REPORT = True                 # write the README's section bench_sections


@dataclass(frozen=True)
class Bench(config.Settings):
    """The benchmark's settings; `cli.parse(Bench, globals())` takes their defaults from the constants above."""
    seeds: str = config.setting(SEEDS, "the songs' seeds: a range a-b or a comma-separated list")
    lengths: str = config.setting(LENGTHS, "each seed's song at these lengths (s), comma-separated")
    tolerance: float = config.setting(TOLERANCE, "a hit lies this close to a true change", unit="s", least=0.0)
    blocks: str = config.setting(BLOCKS, "fixed block lengths to compare against (s), comma-separated")
    out: str = config.setting(OUT, "the Markdown result")
    report: bool = config.setting(REPORT, "also write the README's section bench_sections")


def seed_list(text):
    if "-" in text:
        a, b = map(int, text.split("-"))
        return list(range(a, b + 1))
    return [int(x) for x in text.split(",")]


def scores(found, truth, tolerance):
    """Pooled recall, precision and F1 over songs: found, truth : lists of (k,) times (s)."""
    hits = sum(round(sections.hit_rate(f, g, tolerance)[0] * len(g)) for f, g in zip(found, truth))
    n_true, n_found = sum(map(len, truth)), sum(map(len, found))
    recall, precision = hits / n_true, (hits / n_found if n_found else float("nan"))
    return recall, precision, 2 * recall * precision / (recall + precision) if recall + precision else 0.0


def main():
    s = cli.parse(Bench, globals())
    lengths = [float(x) for x in s.lengths.split(",")]
    blocks = [float(x) for x in s.blocks.split(",")]
    truth, found, fixed, seconds = [], [], {b: [] for b in blocks}, []
    for seed in seed_list(s.seeds):
        for length in lengths:
            x, changes = synth.song(seed, length, return_sections=True)
            _, T, S = spectrogram.magnitude_spectrogram(x, synth.SR)
            t0 = time.perf_counter()
            found.append(sections.boundaries(sections.spectrogram_features(S), T))
            seconds.append(time.perf_counter() - t0)
            truth.append(changes)
            for b in blocks:
                fixed[b].append(np.arange(b, length - 1e-9, b))
    rows = [("found from the music (novelty, this default)", scores(found, truth, s.tolerance))]
    rows += [(f"fixed {b:g} s blocks" + (" (the former default)" if b == 30 else ""),
              scores(fixed[b], truth, s.tolerance)) for b in blocks]
    n = len(truth)
    lines = [f"{n} synthesised songs (seeds {s.seeds} x {s.lengths} s; {sum(map(len, truth))} known section "
             f"changes), a hit within ±{s.tolerance:g} s, matched one to one. Detection took "
             f"{np.median(seconds) * 1000:.0f} ms per song (median; {max(seconds) * 1000:.0f} ms at most).", "",
             "| boundaries | recall (changes found) | precision (found that are true) | F1 |",
             "|---|---|---|---|"]
    lines += [f"| {name} | {r:.2f} | {p:.2f} | {f:.2f} |" for name, (r, p, f) in rows]
    lines += ["", f"Command: `.venv/bin/python benchmarks/bench_sections.py --seeds {s.seeds} --lengths {s.lengths}`"]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / s.out
    store.save_text(out, text)
    spliced = s.report and docs.splice(ROOT / "README.md", "bench_sections", text)
    print(f"saved {out}" + (" and the README's section bench_sections" if spliced else ""))


if __name__ == "__main__":
    cli.run(main)
