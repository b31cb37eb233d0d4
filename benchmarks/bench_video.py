"""Benchmark of the video renderer (stage 4) against the one it replaced, in one run.

Two songs are synthesised (dae.synth.song at 44.1 kHz): 1 minute and 4
minutes. Each gets its real spectrogram and a synthetic path of the right
length (43.07 points/s, 0.5 s windows): a loop per 2 s bar whose shape and
place change every 16 s section and come back, plus a slow drift and a little
jitter, in 12-D shown by its first three principal components. It is loopier
than bench_player's random walk on purpose: a long, self-crossing path is
what made the old renderer slow and what the faint path must keep readable.

At 1280 x 720, 30 fps, with the spectrogram panel, for each song:

1. the current renderer (dae.video) end to end: every frame of the whole song
   drawn by one worker per core, encoded by ffmpeg (libx264, video.PRESET)
   and muxed with the song's audio (AAC), as play_embedding.py does; the wall
   time gives frames per second and the real-time factor;
2. the old renderer (benchmarks/video_reference.py, unchanged from before
   issue 10) through its own pipeline on the first EXCERPT_S seconds of the
   song, with the whole path (it redraws every point in every frame, so an
   excerpt of the long path costs per frame what the whole video would), and
   the current renderer on the same excerpt, for frames per second on the
   same work;
3. both renderers' drawing alone, one process, DRAW_FRAMES frames spread over
   the song: CPU milliseconds per frame, without encoding.

Writes benchmarks/results/video.json and the README's "bench_video" section
(``--report true``: the section again from the saved results, without
measuring; another ``--results`` file is written or read without touching
the README). Every setting below can be given on the command line
(``--help`` lists them).

    .venv/bin/python benchmarks/bench_video.py [--songs-s 60,240] [--excerpt-s 8]
"""
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

import video_reference  # noqa: E402
from dae import audio, cli, config, docs, plotting, synth, video  # noqa: E402
from dae.errors import UserError  # noqa: E402
from dae.spectrogram import magnitude_spectrogram, window_times, window_width  # noqa: E402

SONGS_S = "60,240"             # the songs' lengths (s), comma-separated: the first and last are compared
SR = 44100
WINDOW_SECONDS = 0.5
FPS, WIDTH, HEIGHT = 30, 1280, 720
EXCERPT_S = 8.0                # the old renderer's excerpt (s)
DRAW_FRAMES = 24               # frames drawn (without encoding) for the CPU cost of a frame
REPORT = False                 # true: the README section again from RESULTS, without measuring
RESULTS = "benchmarks/results/video.json"   # the default also updates the README's section
RESULTS_DEFAULT = RESULTS
TARGET_REALTIME = 2.0          # the figures: at least 2x real time for the 4-minute song,
TARGET_FPS_SPREAD = 0.20       # and frames per second within 20% between the 1- and 4-minute songs


@dataclass(frozen=True)
class Bench(config.Settings):
    """The benchmark's settings; `cli.parse(Bench, globals())` takes their defaults from the constants above."""
    songs_s: str = config.setting(SONGS_S, "the synthesised songs' lengths, comma-separated (more than 2 s each; "
                                           "the first and the last are compared)", unit="s")
    sr: int = config.same_as(config.Experiment, "synth_rate")
    window_seconds: float = config.same_as(config.Run, "window_seconds")
    fps: int = config.same_as(config.Player, "fps")
    width: int = config.same_as(config.Player, "width")
    height: int = config.same_as(config.Player, "height")
    excerpt_s: float = config.setting(EXCERPT_S, "the first seconds of each song rendered by both renderers",
                                      unit="s", least=0.0, above=True)
    draw_frames: int = config.setting(DRAW_FRAMES, "frames drawn by each renderer alone, for its CPU time per "
                                                   "frame", least=1, most=100_000)
    report: bool = config.setting(REPORT, "write the README section again from RESULTS, without measuring")
    results: str = config.setting(RESULTS, "the results' JSON file, from the repository root (the default also "
                                           "updates the README's section)")


def song_lengths(cfg):
    """SONGS_S as seconds."""
    try:
        lengths = tuple(float(v) for v in cfg.songs_s.split(","))
    except ValueError:
        lengths = ()
    if not lengths or not all(2.0 < v < 1e6 for v in lengths):
        raise UserError(f"SONGS_S={cfg.songs_s!r}: give comma-separated song lengths in seconds, each more than 2")
    return lengths


def music_path(t, seed=0, dim=12):
    """A path like an embedded song's: (len(t), dim). t : window centres (s)."""
    rng = np.random.default_rng(seed)
    phi = 2 * np.pi * t / 2.0                                    # one loop per 2 s bar
    section = (t // 16).astype(int) % 3                          # three sections that come back
    centres = rng.normal(size=(3, dim)) * 1.2
    shapes = rng.normal(size=(3, dim, 6))
    basis = np.stack([np.cos(phi), np.sin(phi), np.cos(2 * phi), np.sin(2 * phi), np.cos(4 * phi),
                      np.sin(4 * phi)], 1) * [1, 1, 0.5, 0.5, 0.25, 0.25]
    loops = np.einsum("nkb,nb->nk", shapes[section], basis)
    kernel = np.hanning(41) / np.hanning(41).sum()
    drift = np.cumsum(np.stack([np.convolve(rng.normal(size=len(t)), kernel, mode="same") for _ in range(dim)],
                               1), 0) * 0.02
    jitter = np.stack([np.convolve(rng.normal(size=len(t)), np.hanning(5) / 2, mode="same") for _ in range(dim)],
                      1) * 0.05
    return centres[section] + loops + drift + jitter


def song(folder, seconds, sr, window_seconds):
    """Write the song; returns (samples, wav path, P (N, 3), t_center (N,), spec tuple)."""
    x = synth.song(seed=3, seconds=seconds, sr=sr)
    wav = folder / f"song{seconds:.0f}s.wav"
    audio.write_wav(wav, x, sr)
    F, T, S = magnitude_spectrogram(x, sr)
    width = window_width(T, window_seconds)
    _, t_center, _ = window_times(S.shape[1] - width + 1, width, sr)
    P, _, _ = plotting.project3(music_path(t_center))
    return x, wav, P, t_center, (F, T, S, seconds)


def _cpu():
    """CPU seconds of this process and its waited-for children (the render's workers and ffmpeg)."""
    import resource
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def timed_render(module, out, wav, kwargs, seconds, fps):
    load = os.getloadavg()[0]
    cpu = _cpu()
    started = time.perf_counter()
    frames = module.render(out, wav, kwargs, seconds, fps, progress=False)
    wall = time.perf_counter() - started
    cpu = _cpu() - cpu
    return {"frames": frames, "wall_s": wall, "fps": frames / wall, "realtime": seconds / wall,
            "cpu_ms_per_frame": 1000 * cpu / frames, "bytes": out.stat().st_size,
            "load_before": load, "load_after": os.getloadavg()[0]}


def draw_cost(renderer, seconds, n):
    """CPU ms per frame of renderer.draw over `n` times spread over the song (one process)."""
    times = np.linspace(1.0, seconds - 1.0, n)
    renderer.draw(times[0])
    started = time.process_time()
    for t in times:
        renderer.draw(float(t))
    return 1000 * (time.process_time() - started) / len(times)


def check_video(path, seconds, fps):
    """The encoded file: H.264 yuv420p video of round(seconds * fps) frames and an AAC audio stream."""
    import imageio_ffmpeg
    n, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    meta = next(imageio_ffmpeg.read_frames(str(path)))
    x, sr = audio.read_audio(path)
    return {"frames": n, "expected_frames": round(seconds * fps), "codec": meta["codec"], "pix_fmt": meta["pix_fmt"],
            "audio_s": len(x) / sr}


def measure_song(cfg, folder, seconds):
    x, wav, P, t_center, spec = song(folder, seconds, cfg.sr, cfg.window_seconds)
    new_kwargs = dict(P=P, t_center=t_center, spec=spec, width=cfg.width, height=cfg.height, title="benchmark",
                      duration=seconds)
    old_kwargs = dict(P=P, t_center=t_center, spec=spec, width=cfg.width, height=cfg.height, title="benchmark")
    r = {"seconds": seconds, "points": len(P)}
    renderer = video.Renderer(**new_kwargs)
    r["samples"], r["cube_px"] = len(renderer.samples[0]), renderer.samples[3]
    r["draw_ms"] = {"new": draw_cost(renderer, seconds, cfg.draw_frames),
                    "old": draw_cost(video_reference.Renderer(**old_kwargs), seconds, cfg.draw_frames)}
    excerpt = folder / f"excerpt{seconds:.0f}s.wav"
    audio.write_wav(excerpt, x[:int(cfg.excerpt_s * cfg.sr)], cfg.sr)
    r["excerpt"] = {"old": timed_render(video_reference, folder / "old.mp4", excerpt, old_kwargs, cfg.excerpt_s,
                                        cfg.fps),
                    "new": timed_render(video, folder / "new_excerpt.mp4", excerpt, new_kwargs, cfg.excerpt_s,
                                        cfg.fps)}
    out = folder / "new.mp4"
    r["full"] = timed_render(video, out, wav, new_kwargs, seconds, cfg.fps)
    r["full"]["check"] = check_video(out, seconds, cfg.fps)
    return r


def measure(cfg, results):
    lengths = song_lengths(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [measure_song(cfg, Path(tmp), s) for s in lengths]
    result = {"cpus": os.cpu_count(), "fps": cfg.fps, "width": cfg.width, "height": cfg.height,
              "preset": f"{video.PRESET}, {video.X264_PARAMS}" if video.X264_PARAMS else video.PRESET,
              "excerpt_s": cfg.excerpt_s, "draw_frames": cfg.draw_frames, "songs": runs}
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")
    return result


def report(r):
    """The README's section, from a result of `measure`."""
    short, long = r["songs"][0], r["songs"][-1]
    spread = abs(short["full"]["fps"] - long["full"]["fps"]) / short["full"]["fps"]
    loads = [v for s in r["songs"] for run in (s["full"], s["excerpt"]["old"], s["excerpt"]["new"])
             for v in (run["load_before"], run["load_after"])]
    rows = []
    for s in r["songs"]:
        e, f = s["excerpt"], s["full"]
        rows.append(f"| {s['seconds'] / 60:g} min ({s['points']} points; {s['samples']} merged samples, "
                    f"{s['cube_px']:.2f} px cubes) | {s['draw_ms']['old']:.0f} ms | {s['draw_ms']['new']:.1f} ms | "
                    f"{e['old']['fps']:.1f} | {e['new']['fps']:.1f} | **{e['new']['fps'] / e['old']['fps']:.1f}x** | "
                    f"{f['fps']:.1f} fps, **{f['realtime']:.2f}x real time** ({f['wall_s']:.0f} s, "
                    f"{f['bytes'] / 1e6:.1f} MB) |")
    ok = lambda good: "reached" if good else "NOT reached"  # noqa: E731
    checks = all(s["full"]["check"]["frames"] == s["full"]["check"]["expected_frames"]
                 and s["full"]["check"]["codec"].startswith("h264")
                 and abs(s["full"]["check"]["audio_s"] - s["seconds"]) <= 1 / r["fps"] for s in r["songs"])
    return (
        f"Measured by `benchmarks/bench_video.py` in one run on this {r['cpus']}-core machine (1-minute load "
        f"average {min(loads):.1f} to {max(loads):.1f} during the run): synthesised songs at 44.1 kHz with a "
        f"synthetic looping path of 43.07 points/s, {r['width']}x{r['height']} at {r['fps']} fps with the "
        f"spectrogram panel, libx264 `{r['preset']}` + AAC (the old renderer: `veryfast`). *Old* is the renderer before issue 10 "
        f"(`benchmarks/video_reference.py`: matplotlib redraws the whole path in every frame).\n\n"
        f"| song | drawing a frame, old (CPU) | new (CPU) | old, {r['excerpt_s']:g} s excerpt incl. encoding "
        f"(fps) | new, same excerpt (fps) | new / old | new, the whole song end to end |\n"
        f"|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"Targets: at least {TARGET_REALTIME:g}x real time for the {long['seconds'] / 60:g}-minute song: "
        f"{long['full']['realtime']:.2f}x, {ok(long['full']['realtime'] >= TARGET_REALTIME)}; frames per second "
        f"within {100 * TARGET_FPS_SPREAD:.0f}% between the {short['seconds'] / 60:g}- and "
        f"{long['seconds'] / 60:g}-minute songs: {short['full']['fps']:.1f} and {long['full']['fps']:.1f} "
        f"({100 * spread:.0f}%), {ok(spread <= TARGET_FPS_SPREAD)}. Both whole videos have round(duration x "
        f"fps) frames of H.264 and an audio track as long as the song: {'yes' if checks else 'NO'}. The excerpts' frames per second "
        f"include starting the workers and ffmpeg, which a whole song spreads over more frames.\n\n"
        + (f"The load average above {r['cpus']} means other jobs shared the cores, so the wall-clock figures "
           f"understate what the code does on a free machine. " if max(loads) > r["cpus"] else "") +
        f"CPU time "
        f"of the whole render (drawing workers, ffmpeg, the writer), per frame: " + "; ".join(
            f"{s['seconds'] / 60:g} min {s['full']['cpu_ms_per_frame']:.1f} ms" for s in r["songs"]) +
        f" (ratio {long['full']['cpu_ms_per_frame'] / short['full']['cpu_ms_per_frame']:.2f}); with all "
        f"{r['cpus']} cores free and perfectly shared that would allow at most " + "; ".join(
            f"{1000 * r['cpus'] / s['full']['cpu_ms_per_frame']:.0f} fps "
            f"({1000 * r['cpus'] / s['full']['cpu_ms_per_frame'] / r['fps']:.1f}x real time)" for s in r["songs"]) +
        " (an upper bound, not a measurement).\n")


def main():
    cfg = cli.parse(Bench, globals())
    results = ROOT / cfg.results
    result = json.loads(results.read_text()) if cfg.report else measure(cfg, results)
    text = report(result)
    print(text)
    if cfg.results == RESULTS_DEFAULT:
        docs.splice(ROOT / "README.md", "bench_video", text)


if __name__ == "__main__":
    cli.run(main)
