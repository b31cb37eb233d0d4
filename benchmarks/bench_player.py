"""Benchmark of the player page for a 4-minute song, in headless Chromium on this machine.

A 240 s song is synthesised (dae.synth.song at 44.1 kHz), its real spectrogram
computed, and a synthetic 3-D path of the right length (43.07 points/s, 0.5 s
windows) written as a player page with dae.player, as play_embedding.py does.
The page is then opened REPEATS times, each in a fresh headless Chromium
(chromium + chromium-driver from Debian, WebGL in software), with
``#autoplay&muted``; the page itself records, from the start of navigation:
plotly.js loaded, the 3-D plot drawn, and "playing" (the first animation frame
in which the audio's currentTime has advanced and the point is drawn). Then it
plays for PLAY_SECONDS and counts the frames drawn (point and tail restyled).

Writes benchmarks/results/player.json and the README's "bench_player" section.

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
    facts = player.write(folder / "outputs" / "song4min" / "run", folder / "outputs" / player.LIBRARY_NAME,
                         P, t_center, song, SECONDS, spec=(F, T, S), title="song4min · synthetic path",
                         note=note, labels=labels, tail=12, kbps=KBPS)
    facts["write_s"] = time.perf_counter() - started
    facts["points"] = int(n)
    return Path(facts["page"]), facts


def open_once(url):
    from test_player import severe, start_browser, wait_for
    driver = start_browser()
    try:
        started = time.perf_counter()
        driver.get(url)
        wait_for(driver, "return window.player && window.player.pointAt() !== null", timeout=60)
        wall = time.perf_counter() - started
        marks = driver.execute_script("return window.player.marks()")
        now = "return [window.player.frames(), window.player.time(), performance.now()]"
        f0, t0, c0 = driver.execute_script(now)
        time.sleep(PLAY_SECONDS)
        f1, t1, c1 = driver.execute_script(now)
        errors = severe(driver)
    finally:
        driver.quit()
    seconds = (c1 - c0) / 1000                          # the page's own clock
    return {"marks_ms": marks, "get_to_point_s": wall, "fps": (f1 - f0) / seconds,
            "audio_rate": (t1 - t0) / seconds, "severe": [e["message"] for e in errors]}


def main():
    with tempfile.TemporaryDirectory() as tmp:
        page, facts = synthetic_page(Path(tmp))
        runs = [open_once(page.as_uri() + "#autoplay&muted") for _ in range(REPEATS)]
    load = os.getloadavg()[0]
    playing = [r["marks_ms"]["music"] / 1000 for r in runs]
    point = [r["marks_ms"]["point moving"] / 1000 for r in runs]
    plotted = [r["marks_ms"]["plotted"] / 1000 for r in runs]
    library = [r["marks_ms"]["library loaded"] / 1000 for r in runs]
    fps = [r["fps"] for r in runs]
    b = facts["bytes"]
    result = {"seconds": SECONDS, "points": facts["points"], "bytes": b, "audio_kbps": KBPS,
              "write_s": facts["write_s"], "runs": runs, "load_average_1min": load,
              "median_playing_s": statistics.median(playing), "max_playing_s": max(playing),
              "median_point_s": statistics.median(point), "max_point_s": max(point),
              "median_plotted_s": statistics.median(plotted), "median_library_s": statistics.median(library),
              "median_fps": statistics.median(fps), "cpus": os.cpu_count()}
    out = ROOT / "benchmarks" / "results" / "player.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    mb = lambda n: f"{n / 1e6:.2f} MB"  # noqa: E731
    text = (
        f"Measured by `benchmarks/bench_player.py`: a {SECONDS / 60:.0f}-minute song (synthesised at 44.1 kHz, "
        f"{facts['points']} points, 0.5 s windows), opened {REPEATS} times, each in a fresh headless Chromium "
        f"(Debian's, WebGL in software) on this {os.cpu_count()}-core machine (1-minute load average "
        f"{load:.1f} while measuring):\n\n"
        f"| | size |\n|---|---|\n"
        f"| `player.html` (path, spectrogram strip, code) | {mb(b['page'])} |\n"
        f"| `player.m4a` (AAC, {KBPS} kbit/s) | {mb(b['audio'])} |\n"
        f"| `plotly.min.js` (one per output folder, shared by every run) | {mb(b['library'])} |\n"
        f"| **total for the first run of a folder** | **{mb(sum(b.values()))}** |\n\n"
        f"From the start of navigation (median of {REPEATS}, slowest in brackets): the music plays at "
        f"**{statistics.median(playing):.2f} s** ({max(playing):.2f} s); plotly.js is "
        f"loaded at {statistics.median(library):.2f} s, the 3-D plot drawn at {statistics.median(plotted):.2f} s, "
        f"and the point moves with the music at **{statistics.median(point):.2f} s** ({max(point):.2f} s). "
        f"While playing, the point and tail are redrawn {statistics.median(fps):.0f} times a second. "
        f"Writing the page and its audio took {facts['write_s']:.1f} s (the MP4 takes longer than the song).\n")
    print(text)
    if any(r["severe"] for r in runs):
        print("console errors:", [r["severe"] for r in runs], file=sys.stderr)
    docs.splice(ROOT / "README.md", "bench_player", text)


if __name__ == "__main__":
    main()
