"""A video as a source: reading frames from video files and frame folders, and refusing bad ones."""
import json

import numpy as np
import pytest

from conftest import common, run_script, write_song
from test_pipeline import one_line_error, snapshot

from dae import frames, provenance, synth
from dae.errors import UserError

SIZE = (16, 28)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 3 s, 10 fps synthetic video (camera pan, a circling disc, a drifting square) at 32 x 56."""
    tmp = tmp_path_factory.mktemp("clip")
    v = synth.demo_video(seconds=3.0, fps=10, size=(32, 56))
    return tmp, v


def test_video_file_and_frame_folder_give_the_same_frames(clip):
    tmp, v = clip
    lossless = frames.write_video(tmp / "clip.mkv", v, 10, codec="ffv1")
    folder = frames.write_folder(tmp / "clip_frames", v)
    for size in ((32, 56), SIZE):
        a, ta, fa = frames.read(lossless, size)
        b, tb, fb = frames.read(folder, size, folder_fps=10)
        assert a.dtype == np.uint8 and a.shape == (len(v), *size)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(ta, np.arange(len(v)) / 10, atol=1e-3)   # the file's own time stamps
        np.testing.assert_allclose(tb, np.arange(len(v)) / 10)
        assert fa["fps"] == pytest.approx(10) and fb["fps"] == 10 and fa["source_size"] == [32, 56]
    np.testing.assert_array_equal(frames.read(lossless, (32, 56))[0], v)     # gray and lossless: the very pixels
    lossy = frames.write_video(tmp / "clip.mp4", v, 10)                      # H.264: the same picture, nearly
    c = frames.read(lossy, SIZE)[0].astype(int)
    assert c.shape == (len(v), *SIZE) and np.abs(c - frames.read(lossless, SIZE)[0]).mean() < 3


def test_frames_are_in_number_order_not_name_order(clip, tmp_path):
    tmp, v = clip
    folder = frames.write_folder(tmp_path / "f", v[:12], pattern="img{}.png")    # img2.png sorts after img10.png by name
    np.testing.assert_array_equal(frames.read(folder, (32, 56), folder_fps=10)[0], v[:12])


def test_decimation_keeps_every_kth_frame_at_its_time(clip):
    tmp, v = clip
    video = frames.write_video(tmp / "dec.mkv", v, 10, codec="ffv1")
    every, t_every, f_every = frames.read(video, SIZE, step=1)
    third, t_third, f_third = frames.read(video, SIZE, step=3)
    np.testing.assert_array_equal(third, every[::3])
    np.testing.assert_allclose(t_third, t_every[::3])
    assert f_third["fps"] == pytest.approx(10 / 3)


@pytest.mark.parametrize("suffix", ["mkv", "mp4"])
def test_truncated_video_is_refused(clip, tmp_path, suffix):
    tmp, v = clip
    whole = frames.write_video(tmp_path / f"whole.{suffix}", v, 10, codec="ffv1" if suffix == "mkv" else "libx264")
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    with pytest.raises(UserError, match="damaged|decode"):
        frames.read(cut, SIZE)


def test_no_frames(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no frame images"):
        frames.read(tmp_path / "empty", SIZE)
    header_only = tmp_path / "none.y4m"                     # a video stream with no frame in it
    header_only.write_text("YUV4MPEG2 W16 H16 F10:1 Ip A1:1 C420jpeg\n")
    with pytest.raises(UserError, match="holds no frames"):
        frames.read(header_only, SIZE)
    sound = write_song(tmp_path / "sound.wav", np.sin(np.arange(22050) / 7.0))
    with pytest.raises(UserError, match="no video stream"):
        frames.read(sound, SIZE)


def test_frames_of_mixed_sizes_are_refused(clip, tmp_path):
    tmp, v = clip
    folder = frames.write_folder(tmp_path / "mixed", v[:4])
    frames.write_folder(folder, synth.periodic_video(1, 5, (32, 40)), pattern="frame_{:05d}x.png")
    with pytest.raises(UserError, match="mixed sizes"):
        frames.read(folder, SIZE)


def test_save_dataset_on_video_and_bad_video_loses_nothing(clip, tmp_path):
    """Through the script: a good video is saved with its record; a corrupt, truncated or
    frameless replacement ends with one line, and the saved frames stay as they were."""
    tmp, v = clip
    data, out = tmp_path / "data", tmp_path / "out"
    video = frames.write_video(tmp_path / "walk.mp4", v, 10)
    args = ("--song", video, "--source", "video", "--frame-size", "16x28", *common(data, out))
    p = run_script("save_dataset.py", *args)
    assert p.returncode == 0, p.stderr
    saved = data / "walk" / "frames_16x28_s1.npz"
    meta = json.loads(saved.with_name(saved.name + ".json").read_text())
    assert meta["kind"] == "frames" and meta["n_frames"] == len(v) and meta["fps"] == pytest.approx(10)
    assert meta["inputs"]["video"]["sha256"] == provenance.source_hash(video)
    with np.load(saved) as d:
        assert d["frames"].dtype == np.uint8 and d["frames"].shape == (len(v), 16, 28)
    assert not (data / "walk" / "spectrogram.npz").exists()       # a video run leaves the audio side alone
    good = video.read_bytes()
    for damage, words in ((good[:len(good) // 2], ("damaged",)), (b"\0junk" * 500, ("not a video",))):
        video.write_bytes(damage)
        before = snapshot(tmp_path)
        one_line_error(run_script("save_dataset.py", *args), *words)
        assert snapshot(tmp_path) == before
    one_line_error(run_script("save_dataset.py", "--song", tmp_path / "nowhere.mp4", "--source", "video",
                              *common(data, out)), "not found")
    one_line_error(run_script("save_dataset.py", *args[:-4], "--frame-size", "16by28", *common(data, out)),
                   "FRAME_SIZE")


def test_the_frame_shown_at_t_is_the_last_one_at_or_before_t():
    times = np.array([0.0, 0.1, 0.25, 0.3])                 # uneven, as a variable-rate video's
    t = np.array([-0.05, 0.0, 0.099, 0.1, 0.2, 0.25, 0.31, 9.0])
    np.testing.assert_array_equal(frames.frame_at(times, t), [0, 0, 0, 1, 1, 2, 3, 3])
    assert frames.frame_at(times, 0.26) == 2
