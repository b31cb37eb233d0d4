"""Benchmark of stages 4-7 on the demo song (run `make demo` first), in one run:

1. video render speed at 1280x720, 30 fps, as a real-time factor (song seconds per wall second);
2. divergence: batched (one neighbour query per step for all initial conditions)
   vs the per-point loop (one scikit-learn query per point per step, as the original),
   and vs a per-point loop over the same KNN field, to separate batching from the library;
3. R vs R-F: smoothness (mean turning angle) and mean δ at steps 1, 5, 29.

    .venv/bin/python benchmarks/bench_analysis.py
"""
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import settings  # noqa: E402
from dae import UserError, cli, dataset, embedding, layout, plotting, video  # noqa: E402
from dae.forecast import KNNField, divergence, divergence_loop, rollout, turning_angle, unit_scale  # noqa: E402

SONG = "demo"
FPS, WIDTH, HEIGHT = 30, 1280, 720
STEPS, EVERY, K = 30, 10, 5


def run_paths(alpha):
    cfg = {k: getattr(settings, k) for k in dir(settings) if k.isupper()}
    cfg.update(SONG=SONG, ALPHA=alpha)
    return layout.run_paths(cfg)


def bench_video(paths):
    emb = embedding.load(paths)
    F, T, S, spec = dataset.load(paths)
    P, _, _ = plotting.project3(emb["Z"])
    kwargs = dict(P=P, t_center=emb["t_center"], spec=(F, T, S, spec["duration_s"]), width=WIDTH, height=HEIGHT)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        frames = video.render(Path(tmp) / "v.mp4", spec["source"], kwargs, spec["duration_s"], FPS, progress=False)
        seconds = time.perf_counter() - t0
    return spec["duration_s"], frames, seconds


def bench_divergence(paths):
    emb = embedding.load(paths)
    Zs, _, _ = unit_scale(emb["Z"])
    radius = emb["meta"]["width"]
    field = KNNField(Zs, K, exclusion=radius)
    origins = np.arange(0, len(Zs) - STEPS, EVERY)
    t0 = time.perf_counter()
    batched = divergence(Zs, field, origins, STEPS)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    loop = divergence_loop(Zs, origins, STEPS, K, radius)
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    same_field = np.array([[np.linalg.norm(p - Zs[o + i]) for i, p in enumerate(rollout(field, Zs[o], STEPS, o))]
                           for o in origins])
    t_same = time.perf_counter() - t0
    return len(origins), t_batched, t_loop, t_same, np.abs(batched - loop).max(), np.abs(batched - same_field).max()


def main():
    rf, r = run_paths(settings.ALPHA), run_paths(0.0)
    for p in (rf, r):
        if not p.embedding.exists():
            raise UserError(f"no demo embedding at {p.embedding}; run `make demo` first")
    duration, frames, seconds = bench_video(rf)
    print(f"video: {frames} frames ({duration:.1f} s of song) at {WIDTH}x{HEIGHT}, {FPS} fps in {seconds:.1f} s: "
          f"{duration / seconds:.2f}x real time ({frames / seconds:.1f} frames/s)")
    n, tb, tl, ts, err, err_same = bench_divergence(rf)
    print(f"divergence, {n} initial conditions x {STEPS} steps: batched {1000 * tb:.1f} ms; "
          f"per-point loop (scikit-learn, as the original) {1000 * tl:.0f} ms = {tl / tb:.0f}x; "
          f"per-point loop over the same field {1000 * ts:.0f} ms = {ts / tb:.1f}x; "
          f"max |difference| {err:.1e} / {err_same:.1e}")
    print("\n| embedding | mean turning angle (deg) | δ step 1 | δ step 5 | δ step 29 |")
    print("|---|---|---|---|---|")
    for name, paths in (("R", r), ("R-F", rf)):
        emb = embedding.load(paths)
        Zs, _, _ = unit_scale(emb["Z"])
        d = divergence(Zs, KNNField(Zs, K, exclusion=emb["meta"]["width"]), np.arange(0, len(Zs) - STEPS, EVERY),
                       STEPS).mean(axis=0)
        print(f"| {name} | {turning_angle(emb['Z']):.1f} | {d[1]:.4f} | {d[5]:.4f} | {d[29]:.4f} |")


if __name__ == "__main__":
    cli.run(main)
