"""The video: streams, durations, frame count, and the point on screen at each moment."""
import imageio_ffmpeg
import numpy as np
import pytest

from conftest import write_song
from dae import video
from dae.errors import UserError
from dae.audio import read_audio

FPS, W, H = 10, 320, 240
SOURCE_TIMES = np.array([0.0, 0.8, 1.6, 2.4])                  # the source frames of the clip: grey 50, 100, ...


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A synthetic path (a fast helix, so one frame's error shows) rendered with a 3.3 s tone."""
    tmp = tmp_path_factory.mktemp("video")
    sr, seconds = 22050, 3.33
    t = np.arange(int(sr * seconds)) / sr
    song = write_song(tmp / "tone.wav", 0.5 * np.sin(2 * np.pi * 330 * t), sr)
    hop = 1024 / sr
    n = int(seconds / hop) - 11
    t_center = (np.arange(n) + 6) * hop                       # 12-column windows: centre 6 columns in
    a = np.arange(n) * 0.15
    P = np.stack([np.cos(a), np.sin(a), np.linspace(-1, 1, n)], 1)
    images = (50 * (np.arange(4) + 1)).astype(np.uint8)[:, None, None] * np.ones((4, 24, 32), np.uint8)
    kwargs = dict(P=P, t_center=t_center, spec=None, width=W, height=H, tail_seconds=0.5, degrees_per_second=20.0,
                  frames=(images, SOURCE_TIMES))                  # a video source's frames beside the view
    out = tmp / "v.mp4"
    frames = video.render(out, song, kwargs, seconds, FPS, workers=2, progress=False)
    return out, song, seconds, frames, kwargs


def test_video_and_audio_last_as_long_as_the_song(clip):
    out, song, seconds, frames, _ = clip
    n, secs = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert frames == n == round(seconds * FPS)
    x, sr = read_audio(out)                                    # the audio stream, decoded
    audio_secs = len(x) / sr
    assert abs(secs - audio_secs) <= 1 / FPS
    assert abs(audio_secs - seconds) <= 1 / FPS
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert meta["fps"] == FPS and tuple(meta["size"]) == (W, H)
    assert meta["codec"].startswith("h264") and "yuv420p" in meta["pix_fmt"]


def _marker_centre(frame, box):
    """Centre of the pure-red pixels inside the 3-D view (a source frame beside it may hold red too)."""
    r0, r1, c0, c1 = box
    view = frame[r0:r1, c0:c1]
    red = (view[..., 0] > 180) & (view[..., 1] < 90) & (view[..., 2] < 90)
    rows, cols = np.nonzero(red)
    return cols.mean() + c0, rows.mean() + r0


def _start_centre(frame, box):
    """Centre of the white pixels inside the 3-D view (the clock and title are outside it)."""
    r0, r1, c0, c1 = box
    white = np.all(frame[r0:r1, c0:c1] > 200, axis=-1)
    rows, cols = np.nonzero(white)
    return cols.mean() + c0, rows.mean() + r0


def test_frame_at_time_t_shows_the_point_whose_window_is_playing(clip):
    out, song, seconds, frames, kwargs = clip
    renderer = video.Renderer(**kwargs)
    reader = imageio_ffmpeg.read_frames(str(out))
    next(reader)
    checked = 0
    for k, raw in enumerate(reader):
        if k % 5:
            continue
        frame = np.frombuffer(raw, np.uint8).reshape(H, W, 3)
        t = k / FPS
        seen = np.array(_marker_centre(frame, renderer.view_box))
        expected = np.array(renderer.marker_pixel(t))
        assert np.linalg.norm(seen - expected) < 3, (k, seen, expected)
        if np.linalg.norm(np.array(renderer.start_pixel(t)) - expected) > 10 and t > 0.6:   # not under the tail
            start = np.array(_start_centre(frame, renderer.view_box))     # the start of the path, white
            assert np.linalg.norm(start - np.array(renderer.start_pixel(t))) < 2, (k, start)
        # a frame's worth of drift would be visible: the test can tell the moments apart
        if 0.5 < t < seconds - 0.6:
            assert np.linalg.norm(seen - np.array(renderer.marker_pixel(t + 1 / FPS))) > 3
        r0, r1, c0, c1 = renderer.frame_box                        # the source frame shown: the last at or before t
        k_shown = np.searchsorted(SOURCE_TIMES, t, side="right") - 1
        if np.abs(SOURCE_TIMES - t).min() > 0.05:
            assert abs(frame[r0 + 2:r1 - 2, c0 + 2:c1 - 2].mean() - 50 * (k_shown + 1)) < 4, (k, t)
        checked += 1
    assert checked >= 6


def test_position_is_the_window_centred_on_t():
    P = np.arange(30.0).reshape(10, 3)
    timeline = video.Timeline(P, t_center=0.25 + 0.1 * np.arange(10))
    np.testing.assert_allclose(timeline.position(0.25), P[0])
    np.testing.assert_allclose(timeline.position(0.30), (P[0] + P[1]) / 2)
    np.testing.assert_allclose(timeline.position(0.0), P[0])          # before the first centre: rest
    np.testing.assert_allclose(timeline.position(99.0), P[-1])


def test_frame_count_matches_duration():
    assert len(video.frame_times(40.0, 30)) == 1200
    assert len(video.frame_times(2.51, 30)) == 75


def _tone(path, seconds=1.0, sr=22050):
    t = np.arange(int(sr * seconds)) / sr
    return write_song(path, 0.5 * np.sin(2 * np.pi * 330 * t), sr)


def _kwargs(**extra):
    n = 30
    P = np.stack([np.cos(np.arange(n) * 0.2), np.sin(np.arange(n) * 0.2), np.linspace(-1, 1, n)], 1)
    return dict(P=P, t_center=0.1 + np.arange(n) / 30, spec=None, width=W, height=H, **extra)


RENDER_IN_A_SUBPROCESS = """
import sys, numpy as np
sys.path.insert(0, {root!r})
from dae import video
from dae.errors import UserError
from dae.errors import UserError
n = 30
P = np.stack([np.cos(np.arange(n) * 0.2), np.sin(np.arange(n) * 0.2), np.linspace(-1, 1, n)], 1)
kwargs = dict(P=P, t_center=0.1 + np.arange(n) / 30, spec=None, width={w}, height={h}, **{extra})
try:
    video.render({out!r}, {song!r}, kwargs, 1.0, 10, workers=2, progress=False)
except UserError as e:
    print("UserError:", e)
"""


@pytest.mark.parametrize("w, h, extra, words", [
    (W, H, {"no_such_setting": 1}, "the frame renderer could not start (TypeError"),  # fails in the workers
    (0, 0, {}, "must both be at least 64"),                                            # refused before them
])
def test_a_renderer_that_cannot_start_ends_the_render_with_one_line(tmp_path, w, h, extra, words):
    """Before: the Pool's initializer raised, the Pool respawned its workers for ever (a hang)."""
    import subprocess
    import sys
    from conftest import ROOT
    song, out = _tone(tmp_path / "tone.wav"), tmp_path / "v.mp4"
    code = RENDER_IN_A_SUBPROCESS.format(root=str(ROOT), w=w, h=h, extra=extra, out=str(out), song=str(song))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("UserError:") and words in lines[0], p.stdout + p.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [song]          # nothing half-written


def test_missing_audio_at_play_time_is_one_line_and_keeps_the_old_video(tmp_path):
    out = tmp_path / "v.mp4"
    out.write_bytes(b"the previous video")
    with pytest.raises(UserError, match="tone.wav is missing; put it back") as e:
        video.render(out, tmp_path / "tone.wav", _kwargs(), 1.0, 10, workers=1, progress=False)
    assert "\n" not in str(e.value) and "save_dataset.py" in str(e.value)
    assert out.read_bytes() == b"the previous video"


def test_audio_ffmpeg_cannot_read_is_one_line_not_a_broken_pipe(tmp_path):
    """Before: ffmpeg quit at once and writing the first frame raised BrokenPipeError."""
    bad = tmp_path / "tone.wav"
    bad.write_text("not audio\n" * 100)
    out = tmp_path / "v.mp4"
    with pytest.raises(UserError, match="ffmpeg could not write the video") as e:
        video.render(out, bad, _kwargs(), 1.0, 10, workers=1, progress=False)
    assert "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tone.wav"]


# ---------------------------------------------------------------- what a frame shows (drawn, not encoded)

def _helix(n=200, turns=3.0):
    a = np.linspace(0, 2 * np.pi * turns, n)
    return np.stack([np.cos(a), np.sin(a), np.linspace(-1, 1, n)], 1), 0.25 + np.arange(n) / 43.0


def test_the_path_fills_its_panel_at_every_angle_and_stays_inside():
    """Before: the path filled about 7% of its panel. Now, with true proportions, the path at the
    angles the video shows spans the view's height or width (the limiting one) and never leaves it."""
    P, tc = _helix()
    P[:, 2] *= 0.6                                                # wider than tall: the width limits
    r = video.Renderer(P, tc, width=W, height=H, degrees_per_second=90.0, tail_seconds=0.0)
    r0, r1, c0, c1 = r.view_box
    lit = np.zeros((H, W), bool)
    for t in np.linspace(0, tc[-1] + tc[0], 24):
        frame = r.draw(t)
        lit |= frame.max(-1) > 12
    lit[:r0] = False                                              # the clock and title
    rows, cols = np.nonzero(lit)
    assert rows.min() >= r0 and rows.max() < r1 and cols.min() >= c0 and cols.max() < c1
    spans = ((cols.max() - cols.min() + 1) / (c1 - c0), (rows.max() - rows.min() + 1) / (r1 - r0))
    assert max(spans) > 0.9, spans
    # the same path over a short song (a quarter turn) is scaled for the angles that song shows
    short = video.Renderer(P, tc, width=W, height=H, degrees_per_second=90.0, duration=1.0)
    assert short.scale >= r.scale * 0.999


def test_tail_covers_exactly_the_last_tail_seconds():
    P, tc = _helix()
    t = 3.0
    base = video.Renderer(P, tc, width=W, height=H, tail_seconds=0.0).draw(t).astype(int)
    for seconds in (0.3, 1.2):
        r = video.Renderer(P, tc, width=W, height=H, tail_seconds=seconds)
        changed = np.abs(r.draw(t).astype(int) - base).max(-1) > 40
        rows, cols = np.nonzero(changed)
        along = np.array([r.marker_pixel(s) for s in np.linspace(t - seconds, t, 400)])   # (col, row)
        dist = np.hypot(cols[:, None] - along[None, :, 0], rows[:, None] - along[None, :, 1]).min(1)
        assert len(dist) > 10 and dist.max() <= r.tail_radius + 1.5, (seconds, dist.max())
        for s in (t - 0.5 * seconds, t - 0.9 * seconds):            # drawn all along, to its old end
            col, row = np.round(r.marker_pixel(s)).astype(int)
            assert changed[row - 1:row + 2, col - 1:col + 2].any(), (seconds, s)
        # and no further back: one tail's length earlier the path is as without a tail
        col, row = np.round(r.marker_pixel(t - 1.6 * seconds)).astype(int)
        assert not changed[row - 1:row + 2, col - 1:col + 2].any(), seconds


def test_faint_path_is_coloured_by_time():
    P, tc = _helix()
    r = video.Renderer(P, tc, width=W, height=H, tail_seconds=0.0)
    t = tc[-1] + 1.0                                              # the point rests at the end
    frame = r.draw(t).astype(int)
    for k, early in ((len(P) // 8, True), (len(P) * 3 // 4, False)):
        col, row = np.round(r.view(t)[k]).astype(int)
        patch = frame[row - 1:row + 2, col - 1:col + 2].reshape(-1, 3)
        px = patch[patch.sum(1).argmax()]                         # the brightest pixel next to the point
        assert px.sum() > 60, (k, px)                             # drawn
        assert (px[2] > px[0]) == early, (k, px)                  # viridis: blue early, yellow late


def test_spectrogram_strip_scrolls_with_the_song():
    """A single loud column at 2.0 s is one second left of the cursor ("now") at t = 3.0, and so on."""
    T = (np.arange(200) + 0.5) * 0.025
    F = np.linspace(0, 4000, 40)
    S = np.full((40, 200), 1e-6)
    S[:, np.argmin(np.abs(T - 2.0))] = 1.0
    P, tc = _helix()
    r = video.Renderer(P, tc, spec=(F, T, S, 5.0), width=W, height=H)
    r0, r1, c0, c1 = r.strip
    mid = (c0 + c1) // 2
    for t, at in ((3.0, -1.0), (2.25, -0.25), (1.5, 0.5), (0.0, 2.0)):
        row = r.draw(t)[(r0 + r1) // 2, c0:c1].astype(int).sum(-1)
        row[mid - 1 - c0:mid + 1 - c0] = 0                        # the cursor (white)
        expected = mid - c0 + at * r.strip_rate
        assert abs(np.argmax(row) - expected) <= 2, (t, np.argmax(row), expected)


@pytest.mark.parametrize("colour", [False, True])
def test_frames_panel_shows_the_last_source_frame_at_or_before_t(colour):
    """The pluggable side panel for video sources: frame k is painted with its index."""
    times = np.array([0.0, 0.4, 0.4, 1.0, 2.5])                  # a repeated time: the later frame wins
    levels = 40 * (np.arange(len(times)) + 1)
    images = np.zeros((len(times), 30, 40) + ((3,) if colour else ()), np.uint8)
    for k, v in enumerate(levels):
        images[k] = (v, 255 - v, 7 * k) if colour else v
    P, tc = _helix()
    r = video.Renderer(P, tc, frames=(images, times), width=W, height=H)
    r0, r1, c0, c1 = r.frame_box
    assert c0 > r.view_box[3] and (c1 - c0) / (r1 - r0) == pytest.approx(40 / 30, rel=0.05)   # beside the view
    for t, k in ((-0.1, -1), (0.0, 0), (0.39, 0), (0.4, 2), (0.99, 2), (1.0, 3), (2.4, 3), (2.5, 4), (9.0, 4)):
        panel = r.draw(t)[r0:r1, c0:c1].reshape(-1, 3)
        expected = (0, 0, 0) if k < 0 else (images[k].reshape(-1, 3)[0] if colour else (levels[k],) * 3)
        assert np.all(panel == expected), (t, k, panel[0])


@pytest.mark.parametrize("frames, words", [
    ((np.zeros((3, 4, 4), np.float32), np.arange(3.0)), "uint8"),
    ((np.zeros((3, 4, 4), np.uint8), np.arange(2.0)), "3 finite, non-decreasing"),
    ((np.zeros((3, 4, 4), np.uint8), np.array([0.0, 2.0, 1.0])), "non-decreasing"),
    ((np.zeros((3, 4, 4, 4), np.uint8), np.arange(3.0)), "(M, h, w, 3)"),
])
def test_bad_frames_are_one_line(frames, words):
    P, tc = _helix(20)
    with pytest.raises(UserError, match=None) as e:
        video.Renderer(P, tc, frames=frames, width=W, height=H)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_path_samples_cost_is_bounded_by_pixels_not_points():
    """The faint path is drawn from merged samples: their total weight is the path's length, a stretch
    drawn over itself adds no samples, and no more than the budget are kept however long the path."""
    a = np.linspace(0, 2 * np.pi, 400)
    loop = np.stack([100 * np.cos(a), 60 * np.sin(a), 30 * np.sin(2 * a)], 1)
    length = np.linalg.norm(np.diff(loop, axis=0), axis=1).sum()
    once = video.path_samples(loop, np.arange(400.0))
    assert once[1].sum() == pytest.approx(length, rel=1e-9)
    np.testing.assert_allclose(np.linalg.norm(once[0], axis=1).max(), 100, rtol=0.02)
    ten = np.concatenate([loop] * 10)
    many = video.path_samples(ten, np.arange(4000.0))
    assert len(many[0]) <= len(once[0]) * 1.05 and many[1].sum() == pytest.approx(10 * length, rel=1e-3)
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(20000, 3)), 0) * 3        # long, never revisiting
    capped = video.path_samples(walk, np.arange(20000.0), budget=5000)
    assert len(capped[0]) <= 5000 and capped[3] > 1.0
    assert capped[1].sum() == pytest.approx(np.linalg.norm(np.diff(walk, axis=0), axis=1).sum(), rel=1e-9)
