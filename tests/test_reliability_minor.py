"""Minor reliability defects: titles with characters the font lacks, 1-D and 2-D paths drawn with
unlabelled padding axes, and worker tracebacks when the video's render is interrupted."""
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

from conftest import ROOT, common
from dae import fonts, plotting, video

CJK_TITLE = "東京ブギウギ groove · R-F · 0.5 s window"


def _path(d, n=120):
    """A d-D path (n points, 0.5 s windows) and its window centres."""
    a = np.arange(n) * 0.1
    return np.stack([np.sin(a * (k + 1)) for k in range(d)], 1), 0.25 + 0.5 * np.arange(n)


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib and plotly figures the picture functions make, as they are saved."""
    made = {"png": [], "html": []}
    save, write_html = plotting._save, plotting.write_html
    monkeypatch.setattr(plotting, "_save", lambda fig, path: (made["png"].append(fig), save(fig, path)))
    monkeypatch.setattr(plotting, "write_html",
                        lambda fig, path, library: (made["html"].append(fig), write_html(fig, path, library)))
    return made


# ---------------------------------------------------------------- 1: glyphs missing from the font

def test_a_title_with_a_cjk_song_name_is_drawn_without_a_missing_glyph(tmp_path, figures, caplog):
    """Before: matplotlib warned "Glyph ... missing from font(s) DejaVu Sans" for each CJK character."""
    Z, t = _path(3)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, logger="matplotlib"):
        warnings.simplefilter("always")
        plotting.trajectory_png(tmp_path / "p.png", Z, t, CJK_TITLE)
        video.Renderer(Z, t, width=320, height=180, title=CJK_TITLE)        # the MP4's title, drawn once
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    missing += [r.getMessage() for r in caplog.records if "missing from font" in r.getMessage()]
    assert not missing, missing[:2]
    shown = figures["png"][0]._suptitle.get_text()
    assert len(shown) == len(CJK_TITLE) and "groove · R-F · 0.5 s window" in shown     # all the font can say
    assert all(b == a or b == fonts.MISSING_GLYPH for a, b in zip(CJK_TITLE, shown))


# ---------------------------------------------------------------- 2: 1-D and 2-D paths

def _check_labels(labels, d):
    """The axis labels of a d-D path's view: z1, then z2 or time, then the axis the path does not have."""
    assert labels[0] == "z1"
    assert labels[1] == "z2" if d == 2 else labels[1].startswith("time (")
    assert labels[2] == f"(none: the path is {d}-D)"


def _check_3d(ax, d):
    """The 3-D axes of a d-D path: every axis drawn has a label saying what it is; the flat one is
    labelled as the axis the path does not have, and is neither ticked nor drawn."""
    _check_labels([ax.get_xlabel(), ax.get_ylabel(), ax.get_zlabel()], d)
    assert not ax.zaxis.line.get_visible() and not ax.zaxis.label.get_visible() and not len(ax.get_zticks())
    assert ax.elev == 90                                          # seen in its plane


@pytest.mark.parametrize("d", [1, 2])
def test_a_small_path_is_drawn_with_what_it_has_and_says_so(tmp_path, figures, d):
    """Before: a 1-D or 2-D path was padded with zeros drawn on axes labelled z2 and z3 like real ones."""
    Z, t = _path(d)
    plotting.trajectory_png(tmp_path / "p.png", Z, t, "song")
    plotting.trajectory_sections_png(tmp_path / "s.png", Z, t, "song", plotting.section_bounds(t[-1], 20))
    forecast = Z[40:] + 0.01
    plotting.forecast_png(tmp_path / "f.png", Z, forecast, 40, "song")
    trajectory, sections, forecast_fig = figures["png"]
    panels = [a for fig in (trajectory, sections, forecast_fig) for a in fig.axes if a.name == "3d"]
    assert len(panels) == 1 + 3 + 1                              # the sections: 0-20, 20-40, 40-60 s
    for ax in panels:
        _check_3d(ax, d)
    coordinates = [a for a in trajectory.axes if a.get_ylabel() == "coordinates"][0]
    assert [h.get_label() for h in coordinates.get_legend().legend_handles] == ["z1", "z2"][:d]
    assert [a.get_ylabel() for a in forecast_fig.axes if a.name != "3d"] == ["z1", "z2"][:d]   # against the step

    library = tmp_path / "plotly.min.js"
    plotting.trajectory_html(tmp_path / "o" / "t.html", Z, t, "song", library)
    plotting.forecast_html(tmp_path / "o" / "f.html", Z, forecast, 40, "song", library)
    for page in figures["html"]:
        scene = page.layout.scene
        _check_labels([scene[a].title.text for a in ("xaxis", "yaxis", "zaxis")], d)
        assert scene.zaxis.showticklabels is False and scene.camera.eye.z > 0      # seen in its plane
        assert all(np.nanmax(np.abs(np.asarray(trace.z, dtype=float))) == 0 for trace in page.data)


@pytest.mark.parametrize("d", [1, 2])
def test_the_view_of_a_small_path_is_flat_and_a_1d_one_runs_against_time(d):
    Z, t = _path(d)
    P, labels, note = plotting.project3(Z, t)
    _check_labels(labels, d)
    assert not P[:, 2].any() and note == ""
    np.testing.assert_array_equal(P[:, 0], Z[:, 0])
    if d == 1:                                                   # z1 against time: t in the label's unit
        unit = float(re.fullmatch(r"time \(1 = (\S+) s\)", labels[1]).group(1))
        np.testing.assert_allclose(P[:, 1] * unit, t)
    else:
        np.testing.assert_array_equal(P[:, 1], Z[:, 1])


def test_a_1d_forecast_going_past_the_song_s_end_stays_in_the_frame(tmp_path):
    """Time is an axis of a 1-D path's view: a forecast longer than the rest of the song must not
    count as leaving the frame."""
    Z, _ = _path(1)
    facts = plotting.forecast_png(tmp_path / "f.png", Z, np.vstack([Z[60:], Z[:60]]), 60, "song")
    assert facts["first_step_outside"] is None and facts["reach"] == 1.0


# ---------------------------------------------------------------- 3: Ctrl-C while the MP4 renders

def _frames_done(text):
    """The most frames the progress bar has reported so far."""
    return max([int(n) for n in re.findall(r"\|\s*(\d+)/\d+ \[", text)] or [0])


def _start_render(pipeline, *extra):
    """play_embedding.py drawing the MP4 of the pipeline's run in a session of its own, its stderr
    collected by a thread; returns (process, the list of characters read so far, out, data, song)."""
    tmp, data, out, song, procs = pipeline
    assert all(p.returncode == 0 for p in procs), [p.stderr[-500:] for p in procs]
    cmd = [sys.executable, str(ROOT / "play_embedding.py"), "--song", str(song), *map(str, common(data, out)),
           "--format", "mp4", "--workers", "2", *map(str, extra)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    err = []
    threading.Thread(target=lambda: err.extend(iter(lambda: proc.stderr.read(1), "")), daemon=True).start()
    deadline = time.time() + 120
    while _frames_done("".join(err)) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.fail("the render ended before it could be interrupted:\n" + "".join(err)[-2000:])
    return proc, err, out, data


def _end(proc, err, timeout=60):
    """Wait for the process (killed with its group if it hangs); returns its stderr."""
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(0.2)                                              # the reader thread's last characters
    return "".join(err)


def _workers(pid):
    """The frame workers of process `pid`: its Python children (not ffmpeg)."""
    children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    return [int(c) for c in children if b"ffmpeg" not in open(f"/proc/{c}/cmdline", "rb").read()]


def test_ctrl_c_while_the_video_renders_is_one_line_exit_130_and_leaves_nothing(pipeline):
    """Before: the terminal's SIGINT reached the frame workers (KeyboardInterrupt tracebacks from
    ForkPoolWorker, sometimes a hang on the pool's lock) and ffmpeg (then reported as failing)."""
    out = pipeline[2]
    videos = {p: p.read_bytes() for p in out.rglob("*.mp4")}        # another test may have made one
    proc, err, out, data = _start_render(pipeline, "--width", 640, "--height", 360, "--fps", 60)
    os.killpg(proc.pid, signal.SIGINT)                           # Ctrl-C: the terminal signals the whole group
    text = _end(proc, err)
    assert proc.returncode == 130, text[-2000:]
    assert "Traceback" not in text and "BrokenPipe" not in text and "ForkPoolWorker" not in text, text[-2000:]
    assert text.strip().splitlines()[-1].startswith("interrupted:")
    assert {p: p.read_bytes() for p in out.rglob("*.mp4")} == videos                  # no half-written MP4
    assert not list(out.rglob(".tmp*")) and not list(data.rglob(".tmp*"))
    with pytest.raises(ProcessLookupError):                     # no worker left behind
        for _ in range(50):
            os.killpg(proc.pid, 0)
            time.sleep(0.1)


def test_frame_workers_ignore_sigint(pipeline):
    """The parent handles Ctrl-C; a worker that gets it draws on. Before: it died with a traceback
    and the pool waited for its frame for ever."""
    proc, err, out, _ = _start_render(pipeline, "--width", 320, "--height", 180, "--fps", 30)
    workers = _workers(proc.pid)
    assert len(workers) == 2
    for pid in workers:
        os.kill(pid, signal.SIGINT)
    text = _end(proc, err)
    assert proc.returncode == 0 and "Traceback" not in text, text[-2000:]
    assert _frames_done(text) == 300                             # 10 s at 30 fps, every frame
