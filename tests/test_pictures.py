"""The static pictures: markers visible on top, forecasts drawn in the path's frame,
shared plotly.js, held-out scores flagged against persistence."""

import time

import numpy as np
import pytest

from dae import fonts, latent, plotting, stages
from dae.errors import UserError


def _image(path):
    import matplotlib.image
    return (matplotlib.image.imread(path)[..., :3] * 255).round().astype(int)


def _colour_at(img, px, radius=1):
    """The colours of the (2 radius + 1)^2 pixels around (column, row) px."""
    c, r = int(round(px[0])), int(round(px[1]))
    return img[r - radius:r + radius + 1, c - radius:c + radius + 1].reshape(-1, 3)


MAGENTA = np.array([255, 0, 255])


def _loops(n=3000, turns=30):
    """A path that comes back over its start on every turn, late turns included."""
    a = np.linspace(0, 2 * np.pi * turns, n)
    drift = 0.02 * np.sin(a / turns)
    return np.stack([np.cos(a), np.sin(a), drift + 0.3 * np.sin(2 * a)], 1)


def test_start_marker_is_drawn_over_the_lines_that_pass_it(tmp_path):
    """Thirty turns, the last ones included, and the end marker pass over the start."""
    Z = _loops()
    t = np.arange(len(Z)) * 0.023
    facts = plotting.trajectory_png(tmp_path / "p.png", Z, t, "loops")
    img = _image(tmp_path / "p.png")
    assert img.shape[:2] == (650, 1400)
    around = _colour_at(img, facts["start_pixel"])
    assert np.all(np.abs(around - MAGENTA).max(axis=1) <= 40), around   # magenta, not a line's colour
    assert facts["line_width"] < 1 and facts["opacity"] < 1          # 3000 points: thin, translucent


def test_the_end_is_seen_when_the_song_ends_where_it_starts(tmp_path):
    """Silence at both ends puts the first and last points 7e-5 apart: the end square is drawn beside
    the start (which stays on top at its point), not hidden under it; ends apart, at its own point."""
    Z = _loops(600, 3)
    Z[-1] = Z[0] + 7e-5
    t = np.arange(len(Z)) * 0.25
    facts = plotting.trajectory_png(tmp_path / "p.png", Z, t, "silence at both ends")
    img = _image(tmp_path / "p.png")
    assert facts["end_beside_start"]
    assert np.hypot(*np.subtract(facts["end_point_pixel"], facts["start_pixel"])) < 1   # one point on screen
    assert np.all(np.abs(_colour_at(img, facts["start_pixel"]) - MAGENTA).max(axis=1) <= 40)
    end = _colour_at(img, facts["end_pixel"], radius=2)
    assert np.all(end.max(axis=1) <= 40), end                         # black: the end marker, seen
    assert np.hypot(*np.subtract(facts["end_pixel"], facts["start_pixel"])) > 12   # clear of the start dot
    apart = plotting.trajectory_png(tmp_path / "q.png", Z[:450], t[:450], "ends apart")
    assert not apart["end_beside_start"] and apart["end_pixel"] == pytest.approx(apart["end_point_pixel"], abs=0.5)
    assert np.all(_colour_at(_image(tmp_path / "q.png"), apart["end_pixel"]).max(axis=1) <= 40)


@pytest.mark.parametrize("shape", ["loop", "long z1", "8-D"])
def test_axis_labels_of_the_3d_view_sit_inside_it(tmp_path, shape):
    """matplotlib puts the z label outside the 3-D axes (beside the spectrogram's panel) unless the
    box is shrunk: every axis label lies inside the 3-D axes' box, and the box is shrunk no more than
    needed."""
    Z = {"loop": _loops(600, 3), "long z1": _loops(600, 3) * [5, 0.3, 0.3],
         "8-D": np.random.default_rng(0).standard_normal((600, 8)).cumsum(0)}[shape]
    t = np.arange(len(Z)) * 0.25
    F, T = np.linspace(0, 4000, 40), np.linspace(0, t[-1], 200)
    facts = plotting.trajectory_png(tmp_path / "p.png", Z, t, shape, spec=(F, T, np.ones((40, 200))))
    x0, y0, x1, y1 = facts["axes_box"]
    assert len(facts["label_boxes"]) == 3
    for label, (a0, b0, a1, b1) in facts["label_boxes"].items():
        assert x0 <= a0 and a1 <= x1 and y0 <= b0 and b1 <= y1, (label, facts["label_boxes"], facts["axes_box"])
    assert 0.6 < facts["zoom"] < 1.0                                 # shrunk, for the z label at least
    right = max(a1 for a0, b0, a1, b1 in facts["label_boxes"].values())
    assert right > x1 - 40                                           # and no more than it needs


def test_late_turns_are_not_drawn_over_early_ones(tmp_path):
    """One circle traced twice: the early and the late turn cover the same pixels, and both show."""
    import matplotlib
    a = np.linspace(0, 4 * np.pi, 1600)
    Z = np.stack([np.cos(a), np.sin(a), 0.2 * np.cos(a)], 1)
    t = np.linspace(0, 40, 1600)
    plotting.trajectory_png(tmp_path / "p.png", Z, t, "twice")
    img = _image(tmp_path / "p.png")[:, :650]                      # the 3-D view (left), not the colour strip
    viridis = (matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).round()
    pixels = img.reshape(-1, 3)
    pixels = pixels[np.ptp(pixels, axis=1) > 40]                   # coloured, not grey or white
    dist = np.linalg.norm(pixels[:, None, :] - viridis[None], axis=-1)
    drawn = dist.min(1) < 25                                       # pixels of the path, by their colour
    late = dist.argmin(1)[drawn] >= 128                            # the second turn's half of the scale
    assert drawn.sum() > 200 and 0.25 < late.mean() < 0.75, (drawn.sum(), late.mean())   # box shrunk for its labels


def test_long_path_is_thin_and_faint_short_path_is_not():
    assert plotting.line_style(1000) == (1.0, 1.0)
    w, a = plotting.line_style(10_000)
    assert 0.35 <= w < 0.5 and 0.3 <= a < 0.5
    assert plotting.line_style(1_000_000) == (0.35, 0.3)


def test_sections_cover_the_song_and_are_drawn_one_per_panel(tmp_path):
    edges = plotting.section_bounds(95.0, 30)
    np.testing.assert_allclose(edges, [0, 30, 60, 90, 95])
    np.testing.assert_allclose(plotting.section_bounds(90.0, 30), [0, 30, 60, 90])
    with pytest.raises(UserError, match="(?i)SECTION_SECONDS=0"):
        plotting.section_bounds(90.0, 0)
    np.testing.assert_allclose(plotting.section_bounds(40.0, 30, "16, 32"), [0, 16, 32, 40])   # given starts win
    for bad in ("16,x", "32,16", "0,16", "16,40"):
        with pytest.raises(UserError, match="(?i)SECTIONS="):
            plotting.section_bounds(40.0, 30, bad)
    Z = _loops(600, 6)
    t = np.linspace(0, 95, 600)
    assert plotting.trajectory_sections_png(tmp_path / "s.png", Z, t, "loops", edges) == 4
    img = _image(tmp_path / "s.png")
    assert np.sum(np.all(np.abs(img - MAGENTA) <= 40, axis=-1)) > 4 * 20   # each panel marks its section's start


def _runaway(n=400, factor=20.0, steps=200, ic=100):
    """A path in [0, 1]^3 and a forecast from index ic that ends `factor` times its range away."""
    a = np.linspace(0, 8 * np.pi, n)
    Z = np.stack([np.cos(a), np.sin(a), np.sin(a / 4)], 1) * 0.5 + 0.5
    grow = np.linspace(0, 1, steps + 1) ** 2
    F = Z[ic] + grow[:, None] * np.array([factor, -0.5 * factor, 0.3 * factor])
    return Z, F, ic


def test_forecast_axes_stay_in_the_path_range_when_the_forecast_runs_away(tmp_path):
    Z, F, ic = _runaway()
    facts = plotting.forecast_png(tmp_path / "f.png", Z, F, ic, "runaway")
    lo, hi = Z.min(0), Z.max(0)
    margin = plotting.PAD * (hi - lo).max()
    for k, (a, b) in enumerate(facts["limits"]):
        assert lo[k] - margin - 1e-9 <= a and b <= hi[k] + margin + 1e-9, (k, a, b)
    assert facts["first_step_outside"] is not None and facts["steps_outside"] > 100
    assert facts["reach"] > 15                                # said in the picture, not drawn
    assert facts["truth_steps"] == 200
    img = _image(tmp_path / "f.png")
    assert np.all(np.abs(_colour_at(img, facts["ic_pixel"]) - MAGENTA).max(axis=1) <= 40)
    # the interactive page keeps the same frame
    plotting.forecast_html(tmp_path / "out" / "song" / "run" / "f.html", Z, F, ic, "runaway",
                           tmp_path / "out" / "plotly.min.js")
    text = (tmp_path / "out" / "song" / "run" / "f.html").read_text()
    for k in range(3):
        assert f'"range":[{float(lo[k] - margin)!r},{float(hi[k] + margin)!r}]' in text.replace(" ", "")


def test_a_forecast_that_stays_inside_is_drawn_whole(tmp_path):
    Z, _, ic = _runaway()
    F = Z[ic:ic + 201] * 0.9 + 0.05
    facts = plotting.forecast_png(tmp_path / "f.png", Z, F, ic, "inside")
    assert facts["first_step_outside"] is None and facts["steps_outside"] == 0 and facts["reach"] == 1.0


def test_clip_to_box_cuts_at_the_faces_and_keeps_every_inside_point():
    F = np.array([[0.5, 0.5, 0.5], [0.9, 0.5, 0.5], [1.5, 0.5, 0.5], [3.0, 0.5, 0.5], [0.7, 0.5, 0.5], [0.6, 0.5, 0.5]])
    pieces, facts = plotting.clip_to_box(F, np.zeros(3), np.ones(3))
    assert len(pieces) == 2
    np.testing.assert_allclose(pieces[0], [[0.5, 0.5, 0.5], [0.9, 0.5, 0.5], [1.0, 0.5, 0.5]])
    np.testing.assert_allclose(pieces[1], [[1.0, 0.5, 0.5], [0.7, 0.5, 0.5], [0.6, 0.5, 0.5]])
    assert facts == {"steps_outside": 2, "first_step_outside": 2}
    assert plotting.reach(np.zeros((2, 3)) + [[0], [1]], F) == 3.0 and plotting.reach(F, F) == 1.0


def test_a_high_dimensional_forecast_does_not_move_the_view(tmp_path):
    rng = np.random.default_rng(0)
    Z = rng.random((300, 8))
    f, _, _ = plotting.projector(Z)
    calm = Z[50:61]
    wild = calm + np.linspace(0, 100, 11)[:, None]
    P1 = plotting._forecast_view(Z, calm, 50)[0]
    P2 = plotting._forecast_view(Z, wild, 50)[0]
    np.testing.assert_allclose(P1, P2)                          # the path is drawn the same
    np.testing.assert_allclose(P1, f(Z))


def test_html_pages_share_one_plotly_js_by_relative_path(tmp_path):
    out = tmp_path / "outputs"
    library = out / plotting.LIBRARY_NAME
    Z = _loops(200, 2)
    t = np.arange(200) * 0.02
    files = plotting.trajectory_html(out / "song" / "run" / "trajectory.html", Z, t, "loops", library)
    Z01, F, ic = _runaway()
    files2 = plotting.forecast_html(out / "song" / "run" / "forecast.html", Z01, F, ic, "f", library)
    assert files == files2 == {"../../plotly.min.js": plotting.install_library(library)}
    assert library.read_bytes() == plotting.library_source().read_bytes()
    for page in ("trajectory.html", "forecast.html"):
        text = (out / "song" / "run" / page).read_text()
        assert '<script charset="utf-8" src="../../plotly.min.js"></script>' in text
        assert len(text) < 500_000                                # no inlined 4.8 MB copy
    assert "t = %{customdata:.2f} s" in (out / "song" / "run" / "trajectory.html").read_text()


def test_held_out_scores_worse_than_persistence_are_flagged(capsys):
    report = {"model": "lstm", "n_test": 50, "test_first_index": 400,
              "held_out": {"mse": 2e-3, "cosine": 0.5}, "persistence": {"mse": 1e-3, "cosine": 0.9}}
    flag = latent.persistence_flag(report)
    assert "worse than persistence" in flag and "MSE 0.002 > 0.001" in flag and "0.500 < 0.900" in flag
    stages.print_report(report)
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"WARNING: {flag}"
    better = dict(report, held_out={"mse": 5e-4, "cosine": 0.95})
    assert latent.persistence_flag(better) == ""
    stages.print_report(better)
    assert "WARNING" not in capsys.readouterr().out
    only_cos = dict(report, held_out={"mse": 5e-4, "cosine": 0.2})
    assert "MSE" not in latent.persistence_flag(only_cos) and "cosine" in latent.persistence_flag(only_cos)


def test_a_saved_forecast_states_its_units_truth_and_flag(tmp_path):
    import json
    from dae import layout
    paths = layout.Paths("song", tmp_path / "data", tmp_path / "outputs", run="run")
    rng = np.random.default_rng(1)
    Z = np.cumsum(rng.standard_normal((300, 3)), 0) * [1.0, 5.0, 0.1] + [0, 100, -3]   # raw, unequal ranges
    Zs, lo, hi = stages.unit_scale(Z)
    forecast = Zs[250] + np.linspace(0, 1, 81)[:, None] * 0.01
    flag = latent.persistence_flag({"model": "lstm", "held_out": {"mse": 2.0, "cosine": 0.1},
                                    "persistence": {"mse": 1.0, "cosine": 0.5}})
    data, png, html = stages.save_forecast(paths, "lstm", 250, forecast, Z, {}, {}, flag=flag)
    saved = np.load(data)
    np.testing.assert_allclose(saved["Z"], Zs)
    np.testing.assert_allclose(saved["lo"] + saved["Z"] * (saved["hi"] - saved["lo"]), Z)
    np.testing.assert_array_equal(saved["truth"], Zs[250:])             # the song ends after 49 steps
    assert str(saved["units"]) == plotting.FORECAST_UNITS
    meta = json.loads(layout.sidecar_path(data).read_text())
    assert meta["flag"] == flag and meta["truth_steps"] == 49 and meta["first_step_outside_the_frame"] is None
    assert "lstm does worse than persistence" in html.read_text() and png.read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- the spectrogram picture of a long song

INFERNO_TOP = np.array([252, 255, 164])        # the colour of 0 dB, the loudest bin


def _spiky(n, spikes):
    """F (94,) Hz, T (n,) s and a quiet S (94, n) with every bin of the columns `spikes` at the top."""
    F, T = np.linspace(0, 4000, 94), (np.arange(n) + 0.5) * 1024 / 44100
    S = np.random.default_rng(3).uniform(1e-4, 1e-3, (94, n))
    S[:, spikes] = 1.0
    return F, T, S


def test_a_long_spectrogram_is_pooled_by_max_so_a_one_column_spike_keeps_its_value(tmp_path):
    n = 64599                                            # a 25-minute song at 44.1 kHz
    F, T, S = _spiky(n, [n // 2])
    T_edges, F_edges, cells = plotting.pooled(F, T, S, 1000, 400)
    k = cells.shape[1]
    assert cells.shape[0] == 94 and 900 < k <= 1000 and len(T_edges) == k + 1 and len(F_edges) == 95   # rows fit
    assert cells.max() == 1.0 and np.count_nonzero(cells.max(axis=0) == 1.0) == 1
    assert T_edges[0] == T[0] - (T[1] - T[0]) / 2 and T_edges[-1] == T[-1] + (T[1] - T[0]) / 2  # the same extent
    assert np.all(np.diff(T_edges) > 0)
    for spike in (n // 3 + 7, n // 2, 2 * n // 3 + 13):  # away from the frame, which covers the edge pixels
        plotting.spectrogram_png(tmp_path / "s.png", *_spiky(n, [spike]), "spike")
        plot = _image(tmp_path / "s.png")[:, :1150]         # left of the colour bar (whose top is 0 dB too)
        assert (np.abs(plot - INFERNO_TOP).max(axis=2) <= 8).any(), spike      # drawn at 0 dB, not lost


def test_a_short_spectrogram_is_drawn_cell_for_cell_as_before(tmp_path):
    """Fewer columns than the picture has pixels: not pooled, the very bytes of the picture drawn with
    every cell (the figure as it was drawn before pooling)."""
    import matplotlib.pyplot as plt
    from dae import provenance
    F, T, S = _spiky(900, [450])
    assert plotting.pooled(F, T, S, 1000, 400) is None
    plotting.spectrogram_png(tmp_path / "new.png", F, T, S, "short")
    fig, ax = plt.subplots(figsize=(12, 4), layout="constrained")
    db = 20 * np.log10(np.maximum(S, 1e-12) / max(float(np.max(S)), 1e-12))
    mesh = ax.pcolormesh(T, F, db, shading="nearest", cmap="inferno", vmin=max(float(db.min()), -80), vmax=0,
                         rasterized=True)
    ax.set(xlabel="time (s)", ylabel="frequency (Hz)")
    fonts.put_text(ax.set_title, "short")
    fig.colorbar(mesh, ax=ax).set_label("magnitude (dB relative to the loudest bin)")
    fig.savefig(tmp_path / "old.png", format="png", dpi=110)
    plt.close(fig)
    assert provenance.file_hash(tmp_path / "new.png") == provenance.file_hash(tmp_path / "old.png")


# ---------------------------------------------------------------- R against R-F (smoothness_R_vs_R-F.png)

def test_r_against_r_f_has_axis_labels_a_time_colour_bar_and_says_its_scales(tmp_path):
    """Two paths 50x apart in size, side by side: every 3-D panel has its axes labelled, a colour bar of
    time in m:ss spans the song, and the title says each panel has its own scale (the spans given)."""
    import re
    from dae import reports
    t = 0.25 + np.arange(400) * 0.1
    R = _loops(400, 4)
    panels = {"R": {"Z": R, "t": t, "turning": 60.0}, "R-F": {"Z": R * 0.02, "t": t, "turning": 10.0}}
    fig = reports.side_by_side_png(tmp_path / "s.png", [(0.5, 3, panels)], "song")
    assert _image(tmp_path / "s.png").shape[2] == 3
    views = [ax for ax in fig.axes if ax.name == "3d"]
    bars = [ax for ax in fig.axes if ax.name != "3d"]
    assert len(views) == 2 and len(bars) == 1
    for ax in views:
        assert ax.get_xlabel() == "z1" and ax.get_ylabel() == "z2" and ax.get_zlabel() == "z3"
        assert "own scale" in ax.get_title()
    span = float(np.ptp(R, axis=0).max())
    assert f"spans {span:.3g}" in views[0].get_title() and f"spans {0.02 * span:.3g}" in views[1].get_title()
    assert "each panel has its own scale" in fig._suptitle.get_text()
    bar = bars[0]
    assert bar.get_ylabel() == "time in the song (m:ss)"
    assert bar.get_ylim() == pytest.approx((t[0], t[-1]))
    ticks = [x.get_text() for x in bar.get_yticklabels()]
    assert len(ticks) >= 3 and all(re.fullmatch(r"\d+:\d\d", x) for x in ticks), ticks


def test_r_against_r_f_draws_each_pair_from_its_runs(tmp_path, monkeypatch):
    """plot_side_by_side (the notebook's) pairs R with R-F by window and latent size, one row a pair,
    each panel from its own run's embedding."""
    from dae import reports
    t = np.arange(300) * 0.1
    paths = {"r1": _loops(300, 3), "rf1": _loops(300, 3) * 0.1, "lone": _loops(300, 2)}
    monkeypatch.setattr(reports.embedding, "load", lambda p: {"Z": paths[p.run], "t_center": t})
    meta = lambda arch, dim: {"architecture": arch, "latent_dim": dim, "turning_angle_deg": 5.0,  # noqa: E731
                              "settings": {"WINDOW_SECONDS": 0.5}}
    results = [{"run": "r1", "meta": meta("R", 3)}, {"run": "rf1", "meta": meta("R-F", 3)},
               {"run": "lone", "meta": meta("R", 2)}]
    fig = reports.plot_side_by_side(tmp_path / "data" / "song", results, tmp_path / "s.png")
    views = [ax for ax in fig.axes if ax.name == "3d"]
    assert [ax.get_title().split(",")[0] for ax in views] == ["R", "R-F"]          # the lone 2-D R has no pair
    assert "spans 2\n" in views[0].get_title() + "\n" and "spans 0.2\n" in views[1].get_title() + "\n"
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(UserError, match="no R and R-F runs of song"):
        reports.plot_side_by_side(tmp_path / "data" / "song", results[2:], tmp_path / "t.png")


# ---------------------------------------------------------------- trajectory.html in a real headless Chromium

@pytest.fixture(scope="module")
def chromium():
    """The player tests' headless Chromium (Debian's chromium and chromium-driver), skipped without it."""
    import test_player
    if not test_player.HAVE_BROWSER:
        pytest.skip("headless Chromium missing: apt-get install chromium chromium-driver (.ci/run does)")
    driver = test_player.start_browser()
    yield driver
    driver.quit()


def test_trajectory_html_draws_a_time_coloured_line_with_named_ends_inside_the_window(chromium, tmp_path):
    """Thousands of points as a line coloured by time, not a blob of markers; the start and the end as
    named markers in the legend; at a 1280 x 800 window the plot ends inside it, nothing scrolled off,
    and the 3-D box is not cut at the bottom (the last rows of the window are the plot's white paper)."""
    import io
    from PIL import Image
    import test_player
    a = np.linspace(0, 60 * np.pi, 3000)
    Z = np.stack([np.cos(a), np.sin(a), np.sin(a / 30)], 1)                  # a cube; ends where it starts
    t = np.arange(3000) * 0.05
    page = tmp_path / "outputs" / "song" / "run" / "trajectory.html"
    plotting.trajectory_html(page, Z, t, "loops", tmp_path / "outputs" / plotting.LIBRARY_NAME)
    chromium.set_window_size(1280, 800)
    test_player.open_page(chromium, page)
    test_player.wait_for(chromium, """const g = document.querySelector('.plotly-graph-div');
        return !!(g && g._fullLayout && g._fullLayout.scene && g._fullLayout.scene._scene);""")
    time.sleep(1.0)                                                          # WebGL in software: let it draw
    facts = chromium.execute_script("""const g = document.querySelector('.plotly-graph-div');
        const r = g.getBoundingClientRect();
        return {traces: g._fullData.map(d => ({name: d.name, mode: d.mode, legend: d.showlegend,
                                                 colours: d.line && d.line.color ? d.line.color.length : 0})),
                legend: g._fullLayout.showlegend, rect: [r.left, r.top, r.right, r.bottom],
                window: [window.innerWidth, window.innerHeight],
                scroll: [document.documentElement.scrollWidth, document.documentElement.scrollHeight]};""")
    traces = {d["name"]: d for d in facts["traces"]}
    lines = [d for d in facts["traces"] if d["mode"] == "lines"]
    assert len(lines) == 1 and lines[0]["colours"] == 3000                   # one line, coloured point by point
    assert not any("markers" in d["mode"] and d["name"] == lines[0]["name"] for d in facts["traces"])
    assert traces["start (0:00)"]["mode"] == "markers" and traces["end (2:30)"]["mode"] == "markers"
    assert facts["legend"] and traces["start (0:00)"]["legend"] and traces["end (2:30)"]["legend"]
    width, height = facts["window"]
    left, top, right, bottom = facts["rect"]
    assert 0 <= left and 0 <= top and right <= width and bottom <= height, facts
    assert facts["scroll"][0] <= width and facts["scroll"][1] <= height, facts      # nothing scrolled off
    shot = np.asarray(Image.open(io.BytesIO(chromium.get_screenshot_as_png())).convert("RGB"))
    assert shot.shape[:2] == (height, width)
    assert np.all(shot[-4:] == 255), "the 3-D box reaches the window's bottom edge"
    assert test_player.severe(chromium) == []
