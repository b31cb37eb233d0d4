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
(``--report``: the section again from the saved results, without measuring).

    .venv/bin/python benchmarks/bench_player.py
"""
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

from dae import audio, docs, player, plotting, synth  # noqa: E402
from dae.spectrogram import magnitude_spectrogram, window_times, window_width  # noqa: E402

SECONDS = 240.0
SR = 44100
WINDOW_SECONDS = 0.5
REPEATS = int(os.environ.get("REPEATS", 5))
PLAY_SECONDS = 3.0
KBPS = 128
TARGET_S = 2.0                                           # the figure: open and start playing
VIDEO_FPS = 30
VIDEO_SIZE = (150, 268)                                  # the original's frame size
RESULTS = ROOT / "benchmarks" / "results" / "player.json"


def synthetic_page(folder):
    x = synth.song(seed=3, seconds=SECONDS, sr=SR)
    song = folder / "song4min.wav"
    audio.write_wav(song, x, SR)
    F, T, S = magnitude_spectrogram(x, SR)
    width = window_width(T, WINDOW_SECONDS)
    n = S.shape[1] - width + 1
    _, t_center, _ = window_times(n, width, SR)
    rng = np.random.default_rng(0)                      # a smooth wandering 12-D path, shown by its PCA
    steps = rng.normal(size=(n, 12))
    kernel = np.hanning(41) / np.hanning(41).sum()
    Z = np.cumsum(np.stack([np.convolve(steps[:, k], kernel, mode="same") for k in range(12)], 1), 0)
    P, labels, note = plotting.project3(Z)
    started = time.perf_counter()
    facts = player.write(folder / "outputs" / "song4min" / "run", folder / "outputs" / plotting.LIBRARY_NAME,
                         P, t_center, song, SECONDS, spec=(F, T, S), title="song4min · synthetic path",
                         note=note, labels=labels, tail=12, kbps=KBPS)
    facts["write_s"] = time.perf_counter() - started
    facts["points"] = int(n)
    return Path(facts["page"]), facts


def synthetic_video_page(folder, song):
    images = synth.demo_video(seconds=SECONDS, fps=VIDEO_FPS, size=VIDEO_SIZE)
    times = np.arange(len(images)) / VIDEO_FPS
    rng = np.random.default_rng(1)                      # a smooth wandering 3-D path, a point per frame
    kernel = np.hanning(31) / np.hanning(31).sum()
    steps = rng.normal(size=(len(images), 3))
    P = np.cumsum(np.stack([np.convolve(steps[:, k], kernel, mode="same") for k in range(3)], 1), 0)
    started = time.perf_counter()
    facts = player.write(folder / "outputs" / "video4min" / "run", folder / "outputs" / plotting.LIBRARY_NAME,
                         P, times, song, SECONDS, title="video4min · synthetic path", tail=VIDEO_FPS // 2,
                         kbps=KBPS, frames=(images, times))
    facts["write_s"] = time.perf_counter() - started
    facts["points"] = len(P)
    return Path(facts["page"]), facts


UP = "return window.player && window.player.pointAt() !== null && window.player.view() === '3d'"


def open_once(url):
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
        time.sleep(PLAY_SECONDS)
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


def measure():
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        page, facts = synthetic_page(Path(tmp))
        runs = [open_once(page.as_uri() + "#autoplay&muted") for _ in range(REPEATS)]
        video_page, video_facts = synthetic_video_page(Path(tmp), Path(tmp) / "song4min.wav")
        video_runs = [open_once(video_page.as_uri() + "#autoplay&muted") for _ in range(REPEATS)]
    result = summary(runs, facts, load_before)
    result["video"] = summary(video_runs, video_facts, load_before, video=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    if any(r["severe"] for r in runs + video_runs):
        print("console errors:", [r["severe"] for r in runs + video_runs], file=sys.stderr)
    return result


def summary(runs, facts, load_before, video=False):
    marks = lambda key, name: [r[key][name] / 1000 for r in runs]  # noqa: E731
    result = {"seconds": SECONDS, "points": facts["points"], "bytes": facts["bytes"], "audio_kbps": KBPS,
              "write_s": facts["write_s"], "repeats": REPEATS, "cpus": os.cpu_count(),
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
        result["frame_size"], result["video_fps"] = list(VIDEO_SIZE), VIDEO_FPS
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
    result = json.loads(RESULTS.read_text()) if "--report" in sys.argv[1:] else measure()
    text = report(result)
    print(text)
    docs.splice(ROOT / "README.md", "bench_player", text)


if __name__ == "__main__":
    main()
