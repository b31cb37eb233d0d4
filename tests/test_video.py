"""The video: streams, durations, frame count, and the point on screen at each moment."""
import imageio_ffmpeg
import numpy as np
import pytest

from conftest import write_song
from dae import video
from dae.errors import UserError
from dae.audio import read_audio

FPS, W, H = 10, 320, 240


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
    kwargs = dict(P=P, t_center=t_center, spec=None, width=W, height=H, tail=12, degrees_per_second=20.0)
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


def _marker_centre(frame):
    red = (frame[..., 0] > 180) & (frame[..., 1] < 90) & (frame[..., 2] < 90)
    rows, cols = np.nonzero(red)
    return cols.mean(), rows.mean()


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
        seen = np.array(_marker_centre(frame))
        expected = np.array(renderer.marker_pixel(t))
        assert np.linalg.norm(seen - expected) < 3, (k, seen, expected)
        # a frame's worth of drift would be visible: the test can tell the moments apart
        if 0.5 < t < seconds - 0.6:
            assert np.linalg.norm(seen - np.array(renderer.marker_pixel(t + 1 / FPS))) > 3
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
