"""Benchmark of stages 4-7 on the demo song (run `make demo` first), in one run:

1. video render speed at 1280x720, 30 fps, as a real-time factor (song seconds per wall second);
2. divergence: batched (one neighbour query per step for all initial conditions)
   vs the per-point loop (one scikit-learn query per point per step, as the original),
   and vs a per-point loop over the same KNN field, to separate batching from the library;
3. R vs R-F: smoothness (mean turning angle) and mean δ at steps 1, 5, 29.

    .venv/bin/python benchmarks/bench_analysis.py

Every setting below can be given on the command line (``--help`` lists them);
the runs read are settings.py's (R-F with its ALPHA, and R with ALPHA = 0) for SONG.
"""
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import settings  # noqa: E402
from dae import UserError, cli, config, dataset, embedding, layout, plotting, video  # noqa: E402
from dae.forecast import KNNField, divergence, divergence_loop, rollout, turning_angle, unit_scale  # noqa: E402

SONG = "demo"
DATA_DIR, OUTPUT_DIR = settings.DATA_DIR, settings.OUTPUT_DIR
FPS, WIDTH, HEIGHT = 30, 1280, 720
STEPS, EVERY, K = 30, 10, 5


@dataclass(frozen=True)
class Bench(config.Settings):
    """The benchmark's settings; `cli.parse(Bench, globals())` takes their defaults from the constants above."""
    READS_RUN = True   # SONG, DATA_DIR and OUTPUT_DIR only select the runs read
    song: str = config.same_as(config.Song, "song")
    data_dir: str = config.same_as(config.Song, "data_dir")
    output_dir: str = config.same_as(config.Song, "output_dir")
    fps: int = config.same_as(config.Player, "fps")
    width: int = config.same_as(config.Player, "width")
    height: int = config.same_as(config.Player, "height")
    steps: int = config.setting(STEPS, "divergence: forecast steps from each initial condition (δ is reported at "
                                       "steps 1, 5 and 29)", unit="steps", least=30, most=10_000)
    every: int = config.same_as(config.Divergence, "every")
    k: int = config.same_as(config.KnnRule, "k")


def run_paths(cfg, alpha):
    """The paths of settings.py's run of cfg's song with forecasting weight `alpha`."""
    return layout.run_paths(config.Run.from_constants(settings, song=cfg.song, alpha=alpha, data_dir=cfg.data_dir,
                                                      output_dir=cfg.output_dir))


def bench_video(cfg, paths):
    emb = embedding.load(paths)
    F, T, S, spec = dataset.load(paths)
    P, _, _ = plotting.project3(emb["Z"])
    kwargs = dict(P=P, t_center=emb["t_center"], spec=(F, T, S, spec["duration_s"]), width=cfg.width,
                  height=cfg.height)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        frames = video.render(Path(tmp) / "v.mp4", spec["source"], kwargs, spec["duration_s"], cfg.fps,
                              progress=False)
        seconds = time.perf_counter() - t0
    return spec["duration_s"], frames, seconds


def bench_divergence(cfg, paths):
    emb = embedding.load(paths)
    Zs, _, _ = unit_scale(emb["Z"])
    radius = emb["meta"]["width"]
    steps = cfg.steps
    field = KNNField(Zs, cfg.k, exclusion=radius)
    origins = np.arange(0, len(Zs) - steps, cfg.every)
    t0 = time.perf_counter()
    batched = divergence(Zs, field, origins, steps)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    loop = divergence_loop(Zs, origins, steps, cfg.k, radius)
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    same_field = np.array([[np.linalg.norm(p - Zs[o + i]) for i, p in enumerate(rollout(field, Zs[o], steps, o))]
                           for o in origins])
    t_same = time.perf_counter() - t0
    return len(origins), t_batched, t_loop, t_same, np.abs(batched - loop).max(), np.abs(batched - same_field).max()


def main():
    cfg = cli.parse(Bench, globals())
    rf, r = run_paths(cfg, settings.ALPHA), run_paths(cfg, 0.0)
    for p in (rf, r):
        if not p.embedding.exists():
            raise UserError(f"no {cfg.song} embedding at {p.embedding}; run `make demo` first")
    duration, frames, seconds = bench_video(cfg, rf)
    print(f"video: {frames} frames ({duration:.1f} s of song) at {cfg.width}x{cfg.height}, {cfg.fps} fps in "
          f"{seconds:.1f} s: {duration / seconds:.2f}x real time ({frames / seconds:.1f} frames/s)")
    n, tb, tl, ts, err, err_same = bench_divergence(cfg, rf)
    print(f"divergence, {n} initial conditions x {cfg.steps} steps: batched {1000 * tb:.1f} ms; "
          f"per-point loop (scikit-learn, as the original) {1000 * tl:.0f} ms = {tl / tb:.0f}x; "
          f"per-point loop over the same field {1000 * ts:.0f} ms = {ts / tb:.1f}x; "
          f"max |difference| {err:.1e} / {err_same:.1e}")
    print("\n| embedding | mean turning angle (deg) | δ step 1 | δ step 5 | δ step 29 |")
    print("|---|---|---|---|---|")
    for name, paths in (("R", r), ("R-F", rf)):
        emb = embedding.load(paths)
        Zs, _, _ = unit_scale(emb["Z"])
        d = divergence(Zs, KNNField(Zs, cfg.k, exclusion=emb["meta"]["width"]),
                       np.arange(0, len(Zs) - cfg.steps, cfg.every), cfg.steps).mean(axis=0)
        print(f"| {name} | {turning_angle(emb['Z']):.1f} | {d[1]:.4f} | {d[5]:.4f} | {d[29]:.4f} |")


if __name__ == "__main__":
    cli.run(main)
