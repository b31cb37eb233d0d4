"""The player page in a real headless Chromium: it loads without console errors, plays (muted),
moves the point by the sync rule of the video, in the flat view that is up at once and in the
3-D view that replaces it (checked on screenshots: the red point is drawn where the camera puts
the path at that moment, and the path is drawn where the camera puts it), keeps the camera, and
is written by play_embedding.py --format html with the provenance of what it shows.

Needs Debian's chromium and chromium-driver (`.ci/run` installs them); skipped, saying so, without.
"""
import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import SR, changing_song, common, run_script, train_small, write_song
from dae import embedding, layout, player, plotting, provenance
from dae.audio import read_audio
from dae.video import Timeline

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAVE_BROWSER = Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()
needs_browser = pytest.mark.skipif(
    not HAVE_BROWSER, reason="headless Chromium missing: apt-get install chromium chromium-driver (.ci/run does)")


def start_browser():
    """Headless Chromium driven by chromedriver, allowed to autoplay, WebGL in software."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,800",
                 "--autoplay-policy=no-user-gesture-required", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader", "--mute-audio"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_for(driver, script, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script}")


def open_page(driver, path, fragment=""):
    """Load the page afresh (a new fragment alone would not reload it)."""
    driver.get("about:blank")
    driver.get(Path(path).as_uri() + fragment)


def severe(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture(scope="module")
def browser():
    if not HAVE_BROWSER:
        pytest.skip("headless Chromium missing: apt-get install chromium chromium-driver (.ci/run does)")
    driver = start_browser()
    yield driver
    driver.quit()


def helix(n):
    """A path whose every moment is distinguishable: a fast helix rising along z."""
    a = np.arange(n) * 0.2
    return np.stack([np.cos(a), np.sin(a), np.linspace(-1, 1, n)], 1)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A 10 s song and a known path (a helix) with its window centres, written as a player page."""
    tmp = tmp_path_factory.mktemp("player")
    seconds = 10.0
    song = write_song(tmp / "groove.wav", changing_song(seconds))
    hop = 1024 / SR
    width = 11
    n = int(seconds * SR) // 1024 - width + 1
    t_center = (np.arange(n) + width / 2) * hop
    P = helix(n)
    T = (np.arange(n + width - 1) + 0.5) * hop
    F = np.linspace(0, 4000, 50)
    S = np.abs(np.sin(np.outer(F, T))) + 1e-3
    out = tmp / "outputs"
    facts = player.write(out / "groove" / "run", out / plotting.LIBRARY_NAME, P, t_center, song, seconds,
                         spec=(F, T, S), title="groove", labels=["z1", "z2", "z3"], tail=12)
    return Path(facts["page"]), P, t_center, seconds, facts


def position(driver):
    return np.array(driver.execute_script("return window.player.position()"), dtype=np.float64)


def project(points, camera, aspect, ranges, width, height):
    """Where plotly's 3-D scene puts `points` on a `width` x `height` canvas (written here from
    plotly's camera model, independently of the page): the axis box scaled to `aspect` and centred
    at 0, seen from camera eye towards center, perspective with a 45 degree vertical field of view."""
    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    lo, hi = np.array(ranges, dtype=np.float64).T
    m = np.asarray(aspect) * ((points - lo) / (hi - lo) - 0.5)
    eye, center, up = (np.array([camera[k][a] for a in "xyz"], dtype=np.float64) for k in ("eye", "center", "up"))
    f = (center - eye) / np.linalg.norm(center - eye)
    s = np.cross(f, up)
    s /= np.linalg.norm(s)
    u = np.cross(s, f)
    e = m - eye
    depth = e @ f
    fy = 1 / np.tan(np.pi / 8)
    return np.stack([(0.5 + 0.5 * fy * height / width * (e @ s) / depth) * width,
                     (0.5 - 0.5 * fy * (e @ u) / depth) * height], 1)


def screenshot(driver):
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB"), dtype=np.int16)


def check_drawn(driver, P, t_center, times):
    """At each time (paused), the red point on the screen is where the view's camera puts the path
    at that time, within 1% of the path's size on the screen; and the path is drawn where the
    camera puts it. Returns the view checked ("flat" or "3d")."""
    shown = driver.execute_script("return window.player.view()")
    facts = driver.execute_script("""
        const v = document.getElementById('view').getBoundingClientRect();
        const c = window.player.view() === '3d'
            ? document.querySelector('#plot canvas').getBoundingClientRect() : v;
        return {view: [v.left, v.top, v.width, v.height], canvas: [c.left, c.top, c.width, c.height],
                camera: window.player.camera(), aspect: window.player.aspect(), range: window.player.range()};""")
    left, top, width, height = facts["view"]
    assert facts["canvas"] == pytest.approx(facts["view"], abs=1)     # both views fill the same box
    where = lambda Q: project(Q, facts["camera"], facts["aspect"], facts["range"], width, height) + [left, top]  # noqa: E731
    path = where(P)
    size = np.linalg.norm(path.max(0) - path.min(0))
    timeline = Timeline(P, t_center)
    for t in times:
        driver.execute_script("window.player.seek(arguments[0])", t)
        wait_for(driver, "return window.player.caughtUp()")
        driver.execute_async_script("requestAnimationFrame(() => requestAnimationFrame(arguments[0]))")  # on screen
        img = screenshot(driver)
        box = img[int(top):int(top + height), int(left):int(left + width)]
        red = (box[..., 0] > 200) & (box[..., 1] < 80) & (box[..., 2] < 80)
        assert red.sum() >= 20, (shown, t, red.sum())                 # the point is on the screen ...
        ys, xs = np.nonzero(red)
        seen = np.array([xs.mean() + int(left) + 0.5, ys.mean() + int(top) + 0.5])
        want = where(timeline.position(t))[0]                         # ... where the path is at t
        assert np.linalg.norm(seen - want) <= 0.01 * size, (shown, t, seen, want, size)
        assert np.allclose(driver.execute_script("return window.player.screen()"), want, atol=0.5)
    # the path itself is drawn where the camera puts it: something other than the background
    # within 2 pixels of each of 40 of its points
    background = img[int(top) + 2, int(left) + 2]
    for x, y in path[:: max(1, len(path) // 40)]:
        patch = img[int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3]
        assert np.abs(patch - background).max() > 25, (shown, x, y)
    return shown


@needs_browser
def test_page_plays_and_the_point_follows_the_sync_rule(browser, page):
    path, P, t_center, seconds, _ = page
    open_page(browser, path, "#autoplay&muted")
    wait_for(browser, "return window.player && window.player.pointAt() !== null && window.player.view() === '3d'")
    # from 1 s in (a slow machine may have played on, even to the end, while the 3-D view was being set up)
    t0, p0 = browser.execute_script("window.player.seek(1.0); return window.player.play().then("
                                    "() => [window.player.time(), window.player.position()])")
    time.sleep(2.0)
    t1, p1, paused = browser.execute_script(
        "return [window.player.time(), window.player.position(), window.player.paused()]")
    assert 1.0 < t1 - t0 < 6.0 and not paused, (t0, t1, paused)     # the audio plays ...
    assert np.linalg.norm(np.subtract(p1, p0)) > 0.1                 # ... and the point moves along
    browser.execute_script("window.player.pause()")
    timeline = Timeline(P, t_center)
    diameter = np.linalg.norm(P.max(0) - P.min(0))
    for t in (0.0, 0.1, 1.234, 2.5, 3.777, 5.0, seconds - 0.05):   # before the first centre, between, after the last
        browser.execute_script("window.player.seek(arguments[0])", t)
        wait_for(browser, "return window.player.caughtUp()")          # the point painted at the time told
        shown_t = browser.execute_script("return window.player.time()")
        assert abs(shown_t - t) < 1e-3, (t, shown_t)
        error = np.linalg.norm(position(browser) - timeline.position(shown_t))
        assert error <= 0.01 * diameter, (t, error, diameter)
        tail = np.array(browser.execute_script("return window.player.tail()"), dtype=np.float64).T
        assert np.allclose(tail[-1], position(browser)) and 1 <= len(tail) <= 14
    # a seek while paused moves the point the way the path goes: 1 s apart is not the same place
    browser.execute_script("window.player.seek(1.0)")
    a = position(browser)
    browser.execute_script("window.player.seek(2.0)")
    assert np.linalg.norm(position(browser) - a) > 0.05 * diameter
    assert check_drawn(browser, P, t_center, (0.0, 1.234, 3.777, seconds - 0.05)) == "3d"
    check_simplified(browser, P)
    assert severe(browser) == []


def check_simplified(driver, P):
    """plotly draws a simplified line: it starts and ends with the path, and passes within the
    page's tolerance (in the box's units) of every point of the path."""
    kept, tol, aspect, ranges = driver.execute_script(
        "return [window.player.kept(), window.player.simplify(), window.player.aspect(), window.player.range()]")
    lo, hi = np.array(ranges).T
    Q = np.asarray(aspect) * (P - lo) / (hi - lo)
    assert kept[0] == 0 and kept[-1] == len(P) - 1 and np.all(np.diff(kept) > 0)
    for a, b in zip(kept[:-1], kept[1:]):
        A, B, X = Q[a], Q[b], Q[a + 1:b]
        u = np.clip((X - A) @ (B - A) / max((B - A) @ (B - A), 1e-300), 0, 1)
        assert np.all(np.linalg.norm(X - A - u[:, None] * (B - A), axis=1) <= tol * (1 + 1e-6)), (a, b)
    return len(kept)


@needs_browser
@pytest.mark.parametrize("painter", ["worker", "noworker"])
def test_flat_view_plays_in_sync_before_the_3d_view(browser, page, painter):
    """The flat view (up at once, before plotly.js) shows the point in sync, with the camera that
    the 3-D view starts with; `#flat` keeps it (plotly.js is not loaded). The point is painted by a
    worker, or, where there is none (`#noworker` here), by the page."""
    path, P, t_center, seconds, _ = page
    open_page(browser, path, "#autoplay&muted&flat" + ("&noworker" if painter == "noworker" else ""))
    wait_for(browser, "return window.player && window.player.pointAt() !== null")
    assert browser.execute_script("return window.player.worker()") == (painter == "worker")
    t0, p0 = browser.execute_script("window.player.seek(1.0); return [window.player.time(), window.player.position()]")
    time.sleep(2.0)
    t1, p1 = browser.execute_script("return [window.player.time(), window.player.position()]")
    assert 1.0 < t1 - t0 < 6.0 and np.linalg.norm(np.subtract(p1, p0)) > 0.1
    browser.execute_script("window.player.pause()")
    assert check_drawn(browser, P, t_center, (0.0, 0.1, 1.234, 3.777, seconds - 0.05)) == "flat"
    assert browser.execute_script("return typeof Plotly") == "undefined"
    assert severe(browser) == []


@needs_browser
def test_point_moves_while_the_page_is_held(browser, page):
    """The worker paints the point on while the page's thread is held (as plotly.js holds it while
    it loads): here by a busy loop of 1.5 s in the page."""
    path, *_ = page
    open_page(browser, path, "#autoplay&muted&flat")
    wait_for(browser, "return window.player && window.player.pointAt() !== null")
    browser.execute_script("window.player.seek(1.0); const end = performance.now() + 1500; "
                           "while (performance.now() < end) {}")
    time.sleep(0.5)
    held, since = browser.execute_script("return window.player.longestHeld()")
    assert held >= 1400, held
    paints = np.array(browser.execute_script("return window.player.paints()"))
    during = paints[(paints[:, 0] > since + 100) & (paints[:, 0] < since + held - 100)]
    # painted during the hold (the page paints none then), at times that go on with the clock; how
    # often depends on the CPU the worker gets (on a loaded 2-core machine, a few times a second)
    assert len(during) >= 2, (held, since, paints[:, 0].min(), len(paints))
    assert np.all(np.diff(during[:, 1]) > 0)
    assert np.allclose(np.diff(during[:, 1]), np.diff(during[:, 0]) / 1000, atol=0.02)
    assert severe(browser) == []


@needs_browser
def test_strip_tick_labels_lie_inside_the_window_each_under_its_tick(browser, page):
    """The spectrogram strip's tick labels (-4 s .. now .. +4 s) in a row of their own under it: every
    one wholly inside the window, clear of its bottom edge, centred on its tick, none overlapping the
    next, at 1280 x 800 and in a narrow window."""
    path, *_ = page
    size, inner = browser.get_window_size(), browser.execute_script("return window.innerWidth")
    try:
        for width in (1280, 480):
            browser.set_window_size(width, 800)
            open_page(browser, path, "#flat&t=3")
            wait_for(browser, "return window.player && window.player.drawnTime() === 3")
            facts = browser.execute_script("""
                const s = document.getElementById('strip').getBoundingClientRect();
                return {window: [window.innerWidth, window.innerHeight], strip: [s.left, s.width, s.bottom],
                        labels: Array.from(document.querySelectorAll('#strip-ticks span'), e => {
                            const r = e.getBoundingClientRect();
                            return [e.textContent, r.left, r.top, r.right, r.bottom]; })};""")
            inner_width, inner_height = facts["window"]
            left, strip_width, strip_bottom = facts["strip"]
            names = [name for name, *_ in facts["labels"]]
            assert names == ["-4 s", "-3 s", "-2 s", "-1 s", "now", "+1 s", "+2 s", "+3 s", "+4 s"], names
            for (name, x0, y0, x1, y1), s in zip(facts["labels"], range(-4, 5)):
                assert 0 <= x0 < x1 <= inner_width and strip_bottom <= y0 < y1 <= inner_height - 2, (width, name, facts)
                assert abs((x0 + x1) / 2 - (left + strip_width * (0.5 + s / 10))) <= 1, (width, name, facts)
            assert all(a[3] < b[1] for a, b in zip(facts["labels"], facts["labels"][1:])), facts
    finally:                                                          # as the other tests expect it
        browser.set_window_size(size["width"], size["height"])
        wait_for(browser, f"return window.innerWidth === {inner}", timeout=10)
    assert severe(browser) == []


@needs_browser
def test_camera_is_kept_while_the_point_moves(browser, page):
    path, P, t_center, *_ = page
    open_page(browser, path, "#muted&t=2.5")                      # opened at 2.5 s
    wait_for(browser, "return window.player && window.player.view() === '3d'")
    assert browser.execute_script("return window.player.time()") == pytest.approx(2.5)
    diameter = np.linalg.norm(P.max(0) - P.min(0))
    assert np.linalg.norm(position(browser) - Timeline(P, t_center).position(2.5)) <= 0.01 * diameter
    eye = {"x": 0.3, "y": -2.1, "z": 0.9}
    browser.execute_script("return Plotly.relayout(document.getElementById('plot'), "
                           "{'scene.camera.eye': arguments[0]})", eye)
    for t in (0.5, 2.0, 4.0):
        browser.execute_script("window.player.seek(arguments[0])", t)
    browser.execute_script("return window.player.play()")
    wait_for(browser, "return window.player.frames() > 20 && window.player.time() > 0.3")
    browser.execute_script("window.player.pause()")
    got = browser.execute_script("return window.player.camera().eye")
    assert got == pytest.approx(eye, abs=1e-9)
    check_drawn(browser, P, t_center, (1.0, 3.0))                  # the point follows the turned camera
    assert severe(browser) == []


@needs_browser
def test_plotly_draws_a_simplified_path_within_tolerance(browser, tmp_path, page):
    """A wandering path of 3000 points (as an embedding's): plotly draws fewer points, every point
    of the path within the tolerance of its line; the point itself follows the whole path."""
    song = page[0].parent / player.AUDIO_NAME
    rng = np.random.default_rng(1)
    steps = np.apply_along_axis(lambda c: np.convolve(c, np.hanning(9) / np.hanning(9).sum(), "same"), 0,
                                rng.normal(size=(3000, 3)))
    P, t_center = np.cumsum(steps, 0), 0.25 + np.arange(3000) * 1024 / SR
    out = tmp_path / "outputs"
    facts = player.write(out / "walk" / "run", out / plotting.LIBRARY_NAME, P, t_center, song, 10.0)
    open_page(browser, facts["page"], "#muted")
    wait_for(browser, "return window.player && window.player.view() === '3d'")
    kept = check_simplified(browser, P)
    assert 10 < kept < 0.8 * len(P), kept
    browser.execute_script("window.player.seek(arguments[0])", 5.0)
    diameter = np.linalg.norm(P.max(0) - P.min(0))
    assert np.linalg.norm(position(browser) - Timeline(P, t_center).position(5.0)) <= 0.01 * diameter
    assert severe(browser) == []


def bars_video(n, size=(40, 64)):
    """n frames, each told apart from its neighbours: a bright bar at column 7j mod w and a dark one
    at row 3j mod h on a mid-gray ground; at irregular times (gaps of 0.05 s and 0.1 s in turn)."""
    h, w = size
    images = np.full((n, h, w), 110, np.uint8)
    for j in range(n):
        c, r = (7 * j) % (w - 5), (3 * j) % (h - 4)
        images[j, :, c:c + 5] = 240
        images[j, r:r + 4, :] = 10
    times = np.concatenate([[0.0], np.cumsum(np.where(np.arange(n - 1) % 2, 0.1, 0.05))])
    return images, times


@pytest.fixture(scope="module")
def video_page(tmp_path_factory):
    """A silent video's page: 90 frames at irregular times (two sheets), beside a helix."""
    tmp = tmp_path_factory.mktemp("video-player")
    images, times = bars_video(90)
    duration = float(times[-1] + 0.1)
    n = 95
    t_center = np.arange(n) * 0.07
    P = helix(n)
    out = tmp / "outputs"
    facts = player.write(out / "clip" / "run", out / plotting.LIBRARY_NAME, P, t_center, None, duration,
                         title="clip", frames=(images, times))
    return Path(facts["page"]), P, t_center, images, times, facts


def frame_on_screen(driver, shape):
    """The frame panel as shown (an element screenshot), gray, resized to the frames' `shape`."""
    from PIL import Image
    png = driver.find_element("id", "frame").screenshot_as_png
    img = Image.open(io.BytesIO(png)).convert("L").resize((shape[1], shape[0]), Image.BILINEAR)
    return np.asarray(img, dtype=np.float64)


@needs_browser
def test_video_page_shows_the_frame_at_t_in_sync_with_the_point(browser, video_page):
    from dae.frames import frame_at
    path, P, t_center, images, times, facts = video_page
    assert facts["frames"]["sheets"] == 2 and facts["audio_kbps"] == 0
    x, sr = read_audio(path.parent / player.AUDIO_NAME)               # a silent track keeps the time
    assert abs(len(x) / sr - (times[-1] + 0.1)) < 0.1 and np.abs(x).max() < 1e-3
    open_page(browser, path, "#muted")
    wait_for(browser, "return window.player && window.player.view() === '3d'")
    # the frame panel is on the screen, the spectrogram strip is not
    assert browser.execute_script("return document.getElementById('frame').offsetHeight") > 100
    assert browser.execute_script("return document.getElementById('strip').offsetHeight") == 0
    timeline = Timeline(P, t_center)
    diameter = np.linalg.norm(P.max(0) - P.min(0))
    # on both sides of frame times (the rule: the frame with the largest time <= t), in both sheets
    for t in (0.0, 0.049, 0.051, 0.149, 0.151, 2.0, 3.3749, 3.3751, 4.8, 6.6, float(times[-1]) + 0.05):
        browser.execute_script("window.player.seek(arguments[0])", t)
        want = int(frame_at(times, t))
        wait_for(browser, f"const f = window.player.frame(); return f.wanted === {want} && f.index === {want}")
        wait_for(browser, "return window.player.caughtUp()")
        error = np.linalg.norm(position(browser) - timeline.position(t))   # the point at the same t
        assert error <= 0.01 * diameter, (t, error)
        browser.execute_async_script("requestAnimationFrame(() => requestAnimationFrame(arguments[0]))")
        seen = frame_on_screen(browser, images.shape[1:])
        errors = np.abs(seen[None] - images.astype(np.float64)).mean(axis=(1, 2))
        assert errors.argmin() == want, (t, want, errors.argmin(), errors[want], errors.min())
        for other in (want - 1, want + 1):                               # a frame early or late would be seen
            if 0 <= other < len(images):
                assert errors[want] < errors[other] - 5, (t, want, other, errors[want], errors[other])
    # playing (muted) advances the frame and the point together
    browser.execute_script("window.player.seek(0.5); window.player.play()")
    time.sleep(1.5)
    t, k = browser.execute_script("window.player.pause(); return [window.player.time(), window.player.frame().wanted]")
    assert t > 1.0 and k == frame_at(times, t) and k > frame_at(times, 0.5)
    assert severe(browser) == []


def test_video_page_replaces_its_sheets_whole(tmp_path):
    """Other frames make other sheets; the page points at the new ones and the old folder is gone."""
    images, times = bars_video(20)
    out = tmp_path / "outputs"
    args = (out / plotting.LIBRARY_NAME, helix(10), np.arange(10) * 0.1, None, 1.5)
    first = player.write(out / "run", *args, frames=(images, times))
    second = player.write(out / "run", *args, frames=(255 - images, times))
    folders = sorted(p.name for p in (out / "run").iterdir() if p.name.startswith(player.FRAMES_PREFIX))
    assert folders == [second["frames"]["folder"]] != [first["frames"]["folder"]]
    assert f'"dir":"{second["frames"]["folder"]}"' in (out / "run" / player.PAGE_NAME).read_text()


def test_page_is_small_and_offline(page):
    path, P, t_center, seconds, facts = page
    text = path.read_text()
    assert "http://" not in text and "https://" not in text            # no CDN, nothing fetched
    rel = "../../" + plotting.LIBRARY_NAME                              # one copy, at the output folder's root
    assert set(facts["files"]) == {player.AUDIO_NAME, rel}
    assert f'"library":"{rel}"' in text and f'src="{player.AUDIO_NAME}"' in text
    assert provenance.file_hash(path.parent / rel) == provenance.file_hash(plotting.library_source())
    x, sr = read_audio(path.parent / player.AUDIO_NAME)               # AAC of the whole song
    assert abs(len(x) / sr - seconds) < 0.1
    kbits = 8 * facts["bytes"]["audio"] / seconds / 1000
    assert kbits < 160, kbits
    assert facts["bytes"]["page"] < 200_000


def test_format_must_be_known(tmp_path):
    p = run_script("play_embedding.py", "--format", "gif", *common(tmp_path / "d", tmp_path / "o"))
    assert p.returncode == 1
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "FORMAT='gif'" in lines[0], p.stderr
    p = run_script("play_embedding.py", "--audio-kbps", 8, *common(tmp_path / "d", tmp_path / "o"))
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 1 and len(lines) == 1 and "AUDIO_KBPS=8 must be at least 16" in lines[0], p.stderr


@needs_browser
def test_script_writes_the_page_of_a_trained_run_with_its_provenance(tmp_path, browser):
    """A 4-D run (so the page shows its first three principal components), through the script."""
    song = write_song(tmp_path / "tune.wav", changing_song(5.0))
    data, out = tmp_path / "data", tmp_path / "outputs"
    paths, *_ = train_small(song, data, out, epochs=1, latent_dim=4, history=8)
    embedding.save(paths, *embedding.embed_song(paths))
    p = run_script("play_embedding.py", "--song", song, *common(data, out), "--format", "html", "--seed", 0,
                   "--latent-dim", 4, "--history", 8)
    assert p.returncode == 0, p.stderr
    page_path = player.page_path(paths)
    assert page_path.is_file() and not paths.video.exists()           # html only: nothing rendered
    record = json.loads(layout.sidecar_path(page_path).read_text())
    assert record["kind"] == "player page" and record["sha256"] == provenance.file_hash(page_path)
    assert record["inputs"]["embedding"]["sha256"] == provenance.file_hash(paths.embedding)
    assert record["inputs"]["audio"]["sha256"] == provenance.file_hash(song)
    assert record["files"][player.AUDIO_NAME] == provenance.file_hash(page_path.parent / player.AUDIO_NAME)
    assert list((out).rglob(plotting.LIBRARY_NAME)) == [out / plotting.LIBRARY_NAME]
    emb = embedding.load(paths)
    P, _, note = plotting.project3(emb["Z"])
    assert note and record["projection"] == note
    timeline = Timeline(P, emb["t_center"])
    diameter = np.linalg.norm(P.max(0) - P.min(0))
    open_page(browser, page_path, "#muted")
    wait_for(browser, "return window.player && window.player.view() === '3d'")
    check_simplified(browser, P)
    for t in (0.3, 1.7, 3.1):
        browser.execute_script("window.player.seek(arguments[0])", t)
        error = np.linalg.norm(position(browser) - timeline.position(t))
        assert error <= 0.01 * diameter, (t, error, diameter)
    assert severe(browser) == []


def test_bad_paths_and_a_missing_song_are_one_line_errors(tmp_path):
    from dae.errors import UserError
    t = np.arange(5) * 0.1
    with pytest.raises(UserError, match="at least 2 points"):
        player.page(np.zeros((1, 3)), t[:1], 1.0, "a.m4a", "p.js")
    with pytest.raises(UserError, match="finite path"):
        player.page(np.full((5, 3), np.nan), t, 1.0, "a.m4a", "p.js")
    with pytest.raises(UserError, match="evenly spaced"):
        player.page(helix(5), t ** 2, 1.0, "a.m4a", "p.js")
    wobbly = np.array([float(f"{x:.6g}") for x in np.arange(600) / 15])    # a 15 fps video's times, as ffmpeg prints
    assert np.ptp(np.diff(wobbly)) > 1e-7                                   # them: not exactly even, and accepted
    assert '"step":0.0666666' in player.page(helix(600), wobbly, 40.0, "a.m4a", "p.js")
    with pytest.raises(UserError, match="missing"):
        player.write(tmp_path / "run", tmp_path / plotting.LIBRARY_NAME, helix(5), t, tmp_path / "gone.wav", 1.0)
    assert not (tmp_path / "run" / player.PAGE_NAME).exists()
    text = player.page(helix(5), t, 1.0, "a&b.m4a", "../p.js", title="</script><b>")
    assert "</script><b>" not in text and 'src="a&amp;b.m4a"' in text      # escaped, the page stays whole


@pytest.fixture(scope="module")
def sections_page(tmp_path_factory):
    """The helix page of a 10 s song with three sections: 0-3.5, 3.5-7 and 7-10 s."""
    tmp = tmp_path_factory.mktemp("sections")
    seconds, width = 10.0, 11
    song = write_song(tmp / "groove.wav", changing_song(seconds))
    hop = 1024 / SR
    n = int(seconds * SR) // 1024 - width + 1
    t_center = (np.arange(n) + width / 2) * hop
    T = (np.arange(n + width - 1) + 0.5) * hop
    F = np.linspace(0, 4000, 50)
    out = tmp / "outputs"
    facts = player.write(out / "groove" / "run", out / plotting.LIBRARY_NAME, helix(n), t_center, song, seconds,
                         spec=(F, T, np.abs(np.sin(np.outer(F, T))) + 1e-3), title="groove",
                         sections=[0.0, 3.5, 7.0, t_center[-1]])
    return Path(facts["page"])


@needs_browser
def test_the_section_bar_shows_each_section_as_long_as_it_is_and_seeks_to_it(browser, sections_page):
    """One button per section, its width in proportion to its length, lit while its section plays;
    a click seeks to the section's start; the strip marks where a section starts."""
    open_page(browser, sections_page, "#flat&t=3")
    wait_for(browser, "return window.player && window.player.drawnTime() === 3")
    assert browser.execute_script("return window.player.sections()") == [[0.0, 3.5], [3.5, 7.0], [7.0, 10.0]]
    buttons = browser.execute_script("""return Array.from(document.querySelectorAll('#sections button'), b => {
        const r = b.getBoundingClientRect(); return [b.textContent, r.left, r.width]; });""")
    assert [b[0] for b in buttons] == ["1 \u00b7 0:00", "2 \u00b7 0:03", "3 \u00b7 0:07"]
    widths = np.array([b[2] for b in buttons])
    np.testing.assert_allclose(widths / widths.sum(), [0.35, 0.35, 0.3], atol=0.01)
    assert browser.execute_script("return window.player.section()") == 0
    # the strip at t = 3 s shows the start of section 2 (3.5 s) half a second right of "now"
    x, pixel = browser.execute_script("""const c = document.getElementById('strip'), w = c.width;
        const x = Math.round(w / 2 + 0.5 * w / 10); return [x, Array.from(c.getContext('2d').getImageData(x, 5, 1, 1).data)];""")
    assert pixel[0] > 200 and pixel[1] > 170 and pixel[2] < 60, (x, pixel)
    browser.find_elements("css selector", "#sections button")[2].click()
    wait_for(browser, "return Math.abs(window.player.time() - 7) < 0.05 && window.player.section() === 2")
    assert severe(browser) == []


@needs_browser
def test_a_page_without_sections_has_no_section_bar(browser, page):
    path, *_ = page
    open_page(browser, path, "#flat&t=3")
    wait_for(browser, "return window.player && window.player.drawnTime() === 3")
    assert browser.execute_script("return [document.getElementById('sections').offsetHeight, "
                                  "window.player.sections().length, window.player.section()]") == [0, 0, -1]
