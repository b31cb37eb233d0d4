"""Benchmark of the player page for a 4-minute song, in headless Chromium on this machine.

A 240 s song is synthesised (dae.synth.song at 44.1 kHz), its real spectrogram
computed, and a synthetic 3-D path of the right length (43.07 points/s, 0.5 s
windows) written as a player page with dae.player, as play_embedding.py does.
The page is then opened REPEATS times, each in a fresh headless Chromium
(chromium + chromium-driver from Debian, WebGL in software), with
``#autoplay&muted``; the page itself records, from the start of navigation:
the music plays, the point moves with it (first in the flat view), plotly.js
loaded, and the 3-D view up (drawn by plotly, the point moving in it); and the
longest time the page's thread was held while the music played (by plotly.js)
and the point stood still (it is painted by a worker). Then it plays for
PLAY_SECONDS in the 3-D view and counts the times the point and tail are painted.

The same for a video run's page: a 4-minute video at VIDEO_FPS frames/s at
VIDEO_SIZE (the demo video's scene, synthesised, with the song as its sound),
one point per frame, its frames shown beside the path from JPEG sheets: when
its first frame is shown, and how many frames a second are drawn while it plays
in the 3-D view, against the video's frame rate.

Writes benchmarks/results/player.json and the README's "bench_player" section
(``--report true``: the section again from the saved results, without
measuring; another ``--results`` file is written or read without touching
the README). Every setting below can be given on the command line
(``--help`` lists them).

    .venv/bin/python benchmarks/bench_player.py [--repeats 5]
"""
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

from dae import audio, cli, config, docs, layout, player, plotting, synth  # noqa: E402
from dae.spectrogram import magnitude_spectrogram, window_times, window_width  # noqa: E402

SECONDS = 240.0
SR = 44100
WINDOW_SECONDS = 0.5
REPEATS = 5
PLAY_SECONDS = 3.0
KBPS = 128
VIDEO_FPS = 30
VIDEO_SIZE = "150x268"                                   # the original's frame size
REPORT = False                                           # true: the README section again from RESULTS
RESULTS = "benchmarks/results/player.json"               # the default also updates the README's section
RESULTS_DEFAULT = RESULTS
TARGET_S = 2.0                                           # the figure: open and start playing


@dataclass(frozen=True)
class Bench(config.Settings):
    """The benchmark's settings; `cli.parse(Bench, globals())` takes their defaults from the constants above."""
    seconds: float = config.setting(SECONDS, "the synthesised song's (and video's) length", unit="s", least=2.0,
                                    most=3600.0)
    sr: int = config.same_as(config.Experiment, "synth_rate")
    window_seconds: float = config.same_as(config.Run, "window_seconds")
    repeats: int = config.setting(REPEATS, "times each page is opened, each in a fresh browser", least=1,
                                  most=1000)
    play_seconds: float = config.setting(PLAY_SECONDS, "seconds each page plays in the 3-D view while its paints "
                                                       "are counted", unit="s", least=0.0, above=True, most=600.0)
    kbps: int = config.same_as(config.Player, "audio_kbps")
    video_fps: int = config.setting(VIDEO_FPS, "the video run's frame rate", unit="frames/s", least=1, most=240)
    video_size: str = config.setting(VIDEO_SIZE, "the video run's frame size (HEIGHTxWIDTH pixels)")
    report: bool = config.setting(REPORT, "write the README section again from RESULTS, without measuring")
    results: str = config.setting(RESULTS, "the results' JSON file, from the repository root (the default also "
                                           "updates the README's section)")


def synthetic_page(cfg, folder):
    x = synth.song(seed=3, seconds=cfg.seconds, sr=cfg.sr)
    song = folder / "song4min.wav"
    audio.write_wav(song, x, cfg.sr)
    F, T, S = magnitude_spectrogram(x, cfg.sr)
    width = window_width(T, cfg.window_seconds)
    n = S.shape[1] - width + 1
    _, t_center, _ = window_times(n, width, cfg.sr)
    rng = np.random.default_rng(0)                      # a smooth wandering 12-D path, shown by its PCA
    steps = rng.normal(size=(n, 12))
    kernel = np.hanning(41) / np.hanning(41).sum()
    Z = np.cumsum(np.stack([np.convolve(steps[:, k], kernel, mode="same") for k in range(12)], 1), 0)
    P, labels, note = plotting.project3(Z)
    started = time.perf_counter()
    facts = player.write(folder / "outputs" / "song4min" / "run", folder / "outputs" / plotting.LIBRARY_NAME,
                         P, t_center, song, cfg.seconds, spec=(F, T, S), title="song4min · synthetic path",
                         note=note, labels=labels, tail=12, kbps=cfg.kbps)
    facts["write_s"] = time.perf_counter() - started
    facts["points"] = int(n)
    return Path(facts["page"]), facts


def synthetic_video_page(cfg, folder, song):
    fps = cfg.video_fps
    images = synth.demo_video(seconds=cfg.seconds, fps=fps, size=layout.parse_size(cfg.video_size))
    times = np.arange(len(images)) / fps
    rng = np.random.default_rng(1)                      # a smooth wandering 3-D path, a point per frame
    kernel = np.hanning(31) / np.hanning(31).sum()
    steps = rng.normal(size=(len(images), 3))
    P = np.cumsum(np.stack([np.convolve(steps[:, k], kernel, mode="same") for k in range(3)], 1), 0)
    started = time.perf_counter()
    facts = player.write(folder / "outputs" / "video4min" / "run", folder / "outputs" / plotting.LIBRARY_NAME,
                         P, times, song, cfg.seconds, title="video4min · synthetic path", tail=fps // 2,
                         kbps=cfg.kbps, frames=(images, times))
    facts["write_s"] = time.perf_counter() - started
    facts["points"] = len(P)
    return Path(facts["page"]), facts


UP = "return window.player && window.player.pointAt() !== null && window.player.view() === '3d'"


def open_once(url, play_seconds):
    from test_player import severe, start_browser, wait_for
    driver = start_browser()
    try:
        started = time.perf_counter()
        driver.get(url)
        wait_for(driver, UP, timeout=60)
        wall = time.perf_counter() - started
        marks = driver.execute_script("return window.player.marks()")
        still_ms, still_at = driver.execute_script("return window.player.longestStill()")
        held_ms, held_at = driver.execute_script("return window.player.longestHeld()")
        worker = driver.execute_script("return window.player.worker()")
        kept = driver.execute_script("return window.player.kept().length")
        now = ("const f = window.player.frame(); return [window.player.frames(), window.player.time(), "
               "performance.now(), f ? f.draws : 0]")
        f0, t0, c0, d0 = driver.execute_script(now)
        time.sleep(play_seconds)
        f1, t1, c1, d1 = driver.execute_script(now)
        errors = severe(driver)
        driver.get("about:blank")                       # the same page again in the same browser
        driver.get(url)
        wait_for(driver, UP, timeout=60)
        warm = driver.execute_script("return window.player.marks()")
        errors += severe(driver)
    finally:
        driver.quit()
    seconds = (c1 - c0) / 1000                          # the page's own clock
    return {"marks_ms": marks, "warm_marks_ms": warm, "get_to_3d_s": wall, "fps": (f1 - f0) / seconds,
            "frames_per_s": (d1 - d0) / seconds,
            "longest_still_ms": still_ms, "longest_still_from_ms": still_at, "worker": worker, "kept": kept,
            "longest_held_ms": held_ms, "longest_held_from_ms": held_at,
            "audio_rate": (t1 - t0) / seconds, "severe": [e["message"] for e in errors]}


def measure(cfg, results):
    layout.parse_size(cfg.video_size)                   # a bad size is refused before anything is measured
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        page, facts = synthetic_page(cfg, Path(tmp))
        runs = [open_once(page.as_uri() + "#autoplay&muted", cfg.play_seconds) for _ in range(cfg.repeats)]
        video_page, video_facts = synthetic_video_page(cfg, Path(tmp), Path(tmp) / "song4min.wav")
        video_runs = [open_once(video_page.as_uri() + "#autoplay&muted", cfg.play_seconds)
                      for _ in range(cfg.repeats)]
    result = summary(cfg, runs, facts, load_before)
    result["video"] = summary(cfg, video_runs, video_facts, load_before, video=True)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")
    if any(r["severe"] for r in runs + video_runs):
        print("console errors:", [r["severe"] for r in runs + video_runs], file=sys.stderr)
    return result


def summary(cfg, runs, facts, load_before, video=False):
    marks = lambda key, name: [r[key][name] / 1000 for r in runs]  # noqa: E731
    result = {"seconds": cfg.seconds, "points": facts["points"], "bytes": facts["bytes"], "audio_kbps": cfg.kbps,
              "write_s": facts["write_s"], "repeats": cfg.repeats, "cpus": os.cpu_count(),
              "load_average_1min": [load_before, os.getloadavg()[0]], "runs": runs}
    for name, values in (("music", marks("marks_ms", "music")), ("library", marks("marks_ms", "library loaded")),
                         ("point", marks("marks_ms", "point moving")), ("view3d", marks("marks_ms", "3-D view up")),
                         ("point_warm", marks("warm_marks_ms", "point moving")),
                         ("view3d_warm", marks("warm_marks_ms", "3-D view up")),
                         ("music_warm", marks("warm_marks_ms", "music")),
                         ("still", [r["longest_still_ms"] / 1000 for r in runs]),
                         ("held", [r["longest_held_ms"] / 1000 for r in runs])):
        result[f"median_{name}_s"], result[f"max_{name}_s"] = statistics.median(values), max(values)
    result["median_fps"] = statistics.median(r["fps"] for r in runs)
    if video:
        result["frame_size"], result["video_fps"] = list(layout.parse_size(cfg.video_size)), cfg.video_fps
        result["median_frame_s"], result["max_frame_s"] = (statistics.median(marks("marks_ms", "frame shown")),
                                                           max(marks("marks_ms", "frame shown")))
        result["median_frames_per_s"] = statistics.median(r["frames_per_s"] for r in runs)
        result["sheets"] = facts["frames"]["sheets"]
    return result


def report(r):
    """The README's section, from a result of `measure`."""
    mb = lambda n: f"{n / 1e6:.2f} MB"  # noqa: E731
    b = r["bytes"]
    verdict = lambda x: "under" if x < TARGET_S else "over"  # noqa: E731

    def every(mark):                                    # under the target in how many of the runs
        k = sum(run["marks_ms"][mark] / 1000 < TARGET_S for run in r["runs"])
        return "under it in every run" if k == len(r["runs"]) else f"under it in {k} of {len(r['runs'])} runs"
    return (
        f"Measured by `benchmarks/bench_player.py`: a {r['seconds'] / 60:.0f}-minute song (synthesised at "
        f"44.1 kHz, {r['points']} points, 0.5 s windows), opened {r['repeats']} times, each in a fresh headless "
        f"Chromium (Debian's, WebGL in software) on this {r['cpus']}-core machine (1-minute load average "
        f"{r['load_average_1min'][0]:.1f} before and {r['load_average_1min'][1]:.1f} after):\n\n"
        f"| | size |\n|---|---|\n"
        f"| `player.html` (path, spectrogram strip, code) | {mb(b['page'])} |\n"
        f"| `player.m4a` (AAC, {r['audio_kbps']} kbit/s) | {mb(b['audio'])} |\n"
        f"| `plotly.min.js` (one per output folder, shared by every run) | {mb(b['library'])} |\n"
        f"| **total for the first run of a folder** | **{mb(sum(b.values()))}** |\n\n"
        f"| from the start of navigation (median, slowest of {r['repeats']}) | fresh browser | "
        f"the same page again in that browser |\n|---|---|---|\n"
        f"| the music plays | **{r['median_music_s']:.2f} s** ({r['max_music_s']:.2f} s) | "
        f"{r['median_music_warm_s']:.2f} s |\n"
        f"| the point moves with the music (flat view) | **{r['median_point_s']:.2f} s** ({r['max_point_s']:.2f} s) | "
        f"{r['median_point_warm_s']:.2f} s |\n"
        f"| plotly.js loaded | {r['median_library_s']:.2f} s | |\n"
        f"| the 3-D view is up (turn, zoom), the point moving in it | **{r['median_view3d_s']:.2f} s** "
        f"({r['max_view3d_s']:.2f} s) | {r['median_view3d_warm_s']:.2f} s |\n"
        f"| the longest the page's thread was held while playing (plotly.js loading, then drawing): the clock "
        f"and the strip stood still | {r['median_held_s']:.2f} s ({r['max_held_s']:.2f} s) | |\n"
        f"| ... and the point (painted by a worker) | {r['median_still_s']:.2f} s ({r['max_still_s']:.2f} s) | |\n\n"
        f"Against the {TARGET_S:g} s target: the music starts {every('music')}, and the point moves with it "
        f"(flat view) {every('point moving')}; the 3-D view, in a "
        f"fresh browser, is up {verdict(r['median_view3d_s'])} it (median), and in a browser that has opened the "
        f"page before {verdict(r['median_view3d_warm_s'])} it. While playing in the 3-D view, the point and tail "
        f"are painted {r['median_fps']:.0f} times a second (by a worker, on a 2-D canvas above plotly's scene, which "
        f"is not redrawn); plotly draws {r['runs'][0]['kept']} of the {r['points']} points (the line within "
        f"{player.SIMPLIFY:g} of the box of every point). "
        f"Writing the page and its audio "
        f"took {r['write_s']:.1f} s.\n" + (video_report(r["video"]) if "video" in r else ""))


def video_report(v):
    """The README's lines on the video run's page, from `measure`'s result["video"]."""
    mb = lambda n: f"{n / 1e6:.2f} MB"  # noqa: E731
    b = v["bytes"]
    h, w = v["frame_size"]
    return (
        f"\nA video run's page: a {v['seconds'] / 60:.0f}-minute video at {v['video_fps']} frames/s, {h}x{w} "
        f"(the demo video's scene, synthesised; {v['points']} frames, one point each; the song above as its "
        f"sound), opened {v['repeats']} times the same way:\n\n"
        f"| | size |\n|---|---|\n"
        f"| `player.html` (path, frame times, code) | {mb(b['page'])} |\n"
        f"| `player-frames-*/` ({v['sheets']} JPEG sheets of 64 frames) | {mb(b['frames'])} |\n"
        f"| `player.m4a` (AAC, {v['audio_kbps']} kbit/s) | {mb(b['audio'])} |\n"
        f"| `plotly.min.js` (shared) | {mb(b['library'])} |\n"
        f"| **total** | **{mb(sum(b.values()))}** |\n\n"
        f"| from the start of navigation (median, slowest of {v['repeats']}) | fresh browser |\n|---|---|\n"
        f"| the music plays | {v['median_music_s']:.2f} s ({v['max_music_s']:.2f} s) |\n"
        f"| the first frame is shown | {v['median_frame_s']:.2f} s ({v['max_frame_s']:.2f} s) |\n"
        f"| the point moves with the music (flat view) | {v['median_point_s']:.2f} s ({v['max_point_s']:.2f} s) |\n"
        f"| the 3-D view is up | {v['median_view3d_s']:.2f} s ({v['max_view3d_s']:.2f} s) |\n\n"
        f"Playing in the 3-D view, the frame panel drew {v['median_frames_per_s']:.1f} frames a second (median) "
        f"against the video's {v['video_fps']} (**{v['median_frames_per_s'] / v['video_fps']:.2f}x**; a frame is "
        f"drawn when the frame at the audio's time changes, on the page's animation frames). Writing the page, its "
        f"sheets and its audio took {v['write_s']:.1f} s.\n")


def main():
    cfg = cli.parse(Bench, globals())
    results = ROOT / cfg.results
    result = json.loads(results.read_text()) if cfg.report else measure(cfg, results)
    text = report(result)
    print(text)
    if cfg.results == RESULTS_DEFAULT:
        docs.splice(ROOT / "README.md", "bench_player", text)


if __name__ == "__main__":
    cli.run(main)
