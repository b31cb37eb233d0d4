"""Reliability of stage 4's files: the player page (with its audio) and the MP4 are each committed with
their sidecars as one unit whatever instant a kill comes, and a plain file where one of their folders
should be is one line naming it, the file untouched.

The runs are `test_reliability_provenance`'s `fake_run` (a real spectrogram and audio, a placeholder
model, an embedding of random points with a real record); its kill-at-an-instant helper `Killed` is
used as it is.
"""
import dataclasses
import os

import pytest

from conftest import user_error
from dae import config, layout, player, plotting, provenance, stages, store
from dae.embedding import load as load_embedding
from test_reliability_provenance import Killed, embed, fake_run, song  # noqa: F401 (fixtures)

CFG = config.Player(window_seconds=0.5)


def _leftovers(folder):
    """What a writer leaves behind only when cut short: temporaries and a journal."""
    return [p for p in os.listdir(folder) if p.startswith(store.TMP_PREFIX) or p == store.JOURNAL_NAME]


# ---------------------------------------------------------------- 1. the player page

def _publish_page(paths, kbps):
    """What `play_embedding.py --format html` does: the stage's lock, the embedding checked, the page."""
    with store.writing(paths, "play_embedding.py"):
        player.make(paths, load_embedding(paths, need_audio=True), dataclasses.replace(CFG, audio_kbps=kbps))


def _page(paths):
    """(the embedding sha256, the audio bitrate) the page's sidecar names; the page, its audio and its
    sidecar must be there together, the sidecar holding the sha256 of the page and of the audio."""
    page = player.page_path(paths)
    audio = page.with_name(player.AUDIO_NAME)
    side = layout.sidecar_path(page)
    assert page.exists() and audio.exists() and side.exists(), sorted(os.listdir(paths.output_dir))
    meta = provenance.read_sidecar(page, "player page", "-")
    assert meta["sha256"] == provenance.file_hash(page)
    assert meta["files"][player.AUDIO_NAME] == provenance.file_hash(audio)
    return meta["inputs"]["embedding"]["sha256"], meta["audio_kbps"]


def test_a_kill_at_any_instant_of_writing_the_player_page_leaves_a_page_beside_its_own_audio_and_sidecar(
        fake_run):
    paths = fake_run
    _publish_page(paths, 64)                                 # also installs plotly.js, which stays as it is
    events = Killed.count(lambda: _publish_page(paths, 96))
    current = (provenance.file_hash(paths.embedding), 96)
    for event in range(1, events + 1):
        previous = current
        current = (embed(paths, event), 64 if event % 2 else 96)    # a new path, and other audio bytes
        assert Killed.at(event, lambda: _publish_page(paths, current[1])), event
        if event % 2:
            provenance.check(paths, "embedding")             # a reader completes a commit cut short...
        else:
            with store.writing(paths, "play_embedding.py"):       # ...and so does the next writer
                pass
        assert _page(paths) in (previous, current), (event, _page(paths), previous, current)
        _publish_page(paths, current[1])                     # the next run
        assert _page(paths) == current, event
        provenance.check(paths, "player page", path=player.page_path(paths))  # the whole chain, as it is now
        assert not _leftovers(paths.output_dir), event
    assert events >= 8                       # audio, page, sidecar, journal, 3 renames, the journal's removal


# ---------------------------------------------------------------- 2. the MP4

@pytest.fixture
def small_video():
    """play_embedding's MP4 at its smallest: 64 x 64 pixels, 4 frames a second, one drawing process."""
    return dataclasses.replace(CFG, width=64, height=64, fps=4, workers=1, progress=False)


def _publish_video(paths, cfg):
    with store.writing(paths, "play_embedding.py"):
        stages.save_video(paths, load_embedding(paths, need_audio=True), cfg)


def _video(paths):
    """The embedding sha256 the MP4's sidecar names; the sidecar must hold the MP4's sha256."""
    assert paths.video.exists() and layout.sidecar_path(paths.video).exists(), sorted(os.listdir(paths.output_dir))
    meta = provenance.read_sidecar(paths.video, "video", "-")
    assert meta["sha256"] == provenance.file_hash(paths.video)
    return meta["inputs"]["embedding"]["sha256"]


def test_a_kill_while_the_mp4_is_committed_leaves_a_video_beside_its_own_sidecar(fake_run, small_video):
    paths = fake_run
    _publish_video(paths, small_video)
    events = Killed.count(lambda: _publish_video(paths, small_video))
    current = provenance.file_hash(paths.embedding)
    for event in range(1, events + 1):
        previous, current = current, embed(paths, 100 + event)
        assert Killed.at(event, lambda: _publish_video(paths, small_video)), event
        provenance.check(paths, "embedding")                 # a reader completes a commit cut short
        assert _video(paths) in (previous, current), event
        _publish_video(paths, small_video)
        assert _video(paths) == current, event
        assert not _leftovers(paths.output_dir), event
    assert events >= 6                        # the MP4, its sidecar, the journal, 2 renames, the journal's removal


# ---------------------------------------------------------------- 3. a file where a folder should be

def test_a_file_where_a_video_pages_frame_sheets_should_be_is_one_line_and_stays(tmp_path):
    import numpy as np
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 12), dtype=np.uint8)
    times = np.arange(10) * 0.1
    args = (tmp_path / plotting.LIBRARY_NAME, np.random.default_rng(1).normal(size=(10, 3)), times, None, 1.0)
    name = player.write(tmp_path / "first", *args, frames=(images, times))["frames"]["folder"]
    in_the_way = tmp_path / "run" / name
    in_the_way.parent.mkdir()
    in_the_way.write_bytes(b"not a folder")
    user_error(lambda: player.write(tmp_path / "run", *args, frames=(images, times)),
               f"{in_the_way} is a file, not a folder", "move it away")
    assert in_the_way.read_bytes() == b"not a folder"
    assert sorted(os.listdir(tmp_path / "run")) == [name]               # no page, no audio, no temporary
