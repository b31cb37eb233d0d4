"""Pictures: the spectrogram, the trajectory in 3-D (PNG with a companion time panel,
one panel per section, interactive HTML), and forecasts over the path.

Conventions shared by every picture here:

* The path is coloured by time (viridis) with line width and opacity that
  shrink as the path grows (`line_style`), and its segments are drawn in a
  shuffled (seeded) order, so no part of the song is systematically drawn over
  the others.
* Markers (the start, a forecast's initial condition) are drawn after the
  lines and above them (``computed_zorder=False``), in `START_COLOUR`, a colour
  no viridis shade comes near, with a white edge. The end is a black square,
  drawn beside the start, joined to its point, where the start would cover it.
* Axis labels of a 3-D view sit inside its axes (`fit_labels` shrinks the box
  as little as that needs), not beside the next panel.
* HTML pages (these and the player page, `dae.player`) load the output
  folder's one shared ``plotly.min.js`` (`install_library`, at `library_path`)
  by relative path: offline, and 4.8 MB once per output folder instead of
  once per page. A plot page fills the window, without margins (`write_html`).
* The 3-D view (`projector`) draws what the path has: 3 coordinates as they
  are, more by their first three principal components, a 2-D path in its
  plane with the third axis labelled "(none: the path is 2-D)", a 1-D path as
  z1 against time. The MP4 and the player page use the same view.
* Text from outside (a song's name in a title) goes through `dae.fonts.put_text`: drawn
  with an installed font that has its characters, "?" for those none has, so
  no glyph is missing when the picture is drawn.
"""
import os
import shutil
from pathlib import Path

import numpy as np

from dae import provenance, store
from dae.fonts import put_text
from dae.errors import UserError, refused

DPI = 100
SPECTROGRAM_DPI = 110          # stage 1's spectrogram picture (12 x 4 in): 1320 x 440 pixels
START_COLOUR = "#ff00ff"       # magenta: far from every viridis shade and from the greys
START_SIZE = 90                # the start marker's area (pt^2)
END_COLOUR = "black"
END_SIZE = 50                  # the end marker's area (pt^2), when it is drawn at its point
BESIDE = (10, 10)              # points up and right of the end where its marker is drawn when the start covers it
TRUTH_COLOUR = "#1f4e9c"       # the true continuation of a forecast
FORECAST_COLOUR = "crimson"
PAD = 0.05                     # margin around the path's range, as a fraction of its largest span
FORECAST_UNITS = "the path scaled per dimension to [0, 1] by its min and max"
NO_AXIS = "(none: the path is {d}-D)"  # the label of an axis a 1-D or 2-D path does not have
LIBRARY_NAME = "plotly.min.js"
HTML_CAMERA = dict(eye=dict(x=1.65, y=1.65, z=1.2))   # plotly's default direction, further back: a cube fits


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    plt = _pyplot()
    with store.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    plt.close(fig)


def clock(seconds):
    """'m:ss' for a time in seconds (>= 0)."""
    s = int(round(float(seconds)))
    return f"{s // 60}:{s % 60:02d}"


def spectrogram_png(path, F, T, S, title):
    """Save the spectrogram (F (n_freq,) Hz, T (n_time,) s, S (n_freq, n_time)) in dB."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(12, 4), layout="constrained")
    mesh = _spectrogram(ax, F, T, S, SPECTROGRAM_DPI)
    ax.set(xlabel="time (s)", ylabel="frequency (Hz)")
    put_text(ax.set_title, title)
    fig.colorbar(mesh, ax=ax).set_label("magnitude (dB relative to the loudest bin)")
    with store.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=SPECTROGRAM_DPI)
    plt.close(fig)


def _spectrogram(ax, F, T, S, dpi):
    """Draw S (n_freq, n_time) in dB relative to its loudest bin (floor: its quietest bin, at least -80 dB)
    on `ax`, whose figure is saved at `dpi`.

    At most one cell per pixel of `ax` is drawn each way (its pixels as placed before the layout, which
    widens it in these figures): a longer spectrogram (a 25-minute song has 6 million cells, a 680 MB
    mesh) is drawn by the max of each group of columns (rows), each group at least a pixel wide, so a
    short loud event stays visible. One that fits is drawn cell for cell."""
    S = np.asarray(S)
    top = max(float(np.max(S)), 1e-12)
    style = dict(cmap="inferno", vmin=max(float(_decibels(np.min(S), top)), -80), vmax=0, rasterized=True)
    width, height = ax.get_position().size * ax.figure.get_size_inches() * dpi
    cells = pooled(F, T, S, width, height)
    if cells is None:
        return ax.pcolormesh(T, F, _decibels(S, top), shading="nearest", **style)
    T_edges, F_edges, S = cells
    return ax.pcolormesh(T_edges, F_edges, _decibels(S, top), shading="flat", **style)


def pooled(F, T, S, columns, rows):
    """S (n_freq, n_time) at F (n_freq,) Hz and T (n_time,) s as at most `columns` x `rows` cells, each
    the max of its group of consecutive columns (rows), so a short loud event keeps its value.

    Returns (T edges (k + 1,) s, F edges (m + 1,) Hz, cells (m, k)), the edges where matplotlib's
    "nearest" shading puts those of the cells they join; None when S fits as it is."""
    cols, rows = _groups(S.shape[1], columns), _groups(S.shape[0], rows)
    if cols is None and rows is None:
        return None
    T_edges, F_edges = _edges(T), _edges(F)
    if cols is not None:
        S, T_edges = np.maximum.reduceat(S, cols, axis=1), T_edges[np.append(cols, len(T))]
    if rows is not None:
        S, F_edges = np.maximum.reduceat(S, rows, axis=0), F_edges[np.append(rows, len(F))]
    return T_edges, F_edges, S


def _decibels(S, top):
    """S (any shape, magnitudes) in dB relative to `top` (> 0), magnitudes below 1e-12 taken as 1e-12."""
    return 20 * np.log10(np.maximum(S, 1e-12) / top)


def _groups(n, limit):
    """The first index of each group when n cells are drawn as at most `limit` (groups of equal size,
    the last one shorter); None when n fits."""
    limit = max(int(limit), 1)
    if n <= limit:
        return None
    return np.arange(0, n, -(-n // limit))


def _edges(x):
    """The n + 1 cell edges of n cell centres `x` (halfway between centres, half a step beyond the ends),
    as matplotlib's "nearest" shading puts them."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return np.repeat(x, 2)
    half = np.diff(x) / 2
    return np.concatenate([x[:1] - half[:1], x[:-1] + half, x[-1:] + half[-1:]])


# ---------------------------------------------------------------- projection

def projector(Z, t=None):
    """The 3-D view of a path Z (N, d): (function mapping (M, d) points to (M, 3), axis labels, note).

    What the path has, labelled honestly: d = 3, the coordinates themselves; d > 3,
    the first three principal components of Z (the function applies the same
    projection to other points, e.g. a forecast, without refitting it; the note
    says so); d = 2, z1 and z2 with a flat third axis labelled NO_AXIS; d = 1, z1
    against time (`time_axis`) with a flat third axis labelled NO_AXIS.

    t : (N,) the time of each point (s), for d = 1; without it time is counted in
    windows. The function's `first` is the index of the first point it is given
    (a forecast from index ic: first=ic), which sets their times when d = 1.
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or len(Z) < 1 or Z.shape[1] < 1:
        raise UserError(f"a path to draw must be an (N, d) array with N >= 1, got shape {Z.shape}")
    d = Z.shape[1]
    if d == 1:
        clock_of, label = time_axis(Z, t)
        return (lambda X, first=0: np.column_stack([np.asarray(X, dtype=np.float64)[:, 0],
                                                    clock_of(first + np.arange(len(X))), np.zeros(len(X))]),
                ["z1", label, NO_AXIS.format(d=1)], "")
    if d <= 3:
        return (lambda X, first=0: np.pad(np.asarray(X, dtype=np.float64), ((0, 0), (0, 3 - d))),
                [f"z{i + 1}" for i in range(d)] + [NO_AXIS.format(d=d)] * (3 - d), "")
    mean = Z.mean(0)
    _, s, vt = np.linalg.svd(Z - mean, full_matrices=False)
    share = s[:3] ** 2 / np.sum(s ** 2)
    note = f"first 3 principal components of the {d}-D embedding ({100 * share.sum():.0f}% of variance)"
    return (lambda X, first=0: (np.asarray(X, dtype=np.float64) - mean) @ vt[:3].T,
            [f"PC{i + 1} ({100 * share[i]:.0f}%)" for i in range(3)], note)


def time_axis(Z, t=None):
    """The time axis of a 1-D path Z (N, 1) drawn against time: (function from point indices to the axis's
    values, its label).

    Time is in seconds (window centres t, evenly spaced: t[0] + i * their mean step) or, without t, in
    windows, divided by a round unit (1, 2 or 5 times a power of ten) that makes the time axis about as
    long as z1's range, so that neither is squeezed flat in a view of true proportions; the label says
    the unit ("time (s)", "time (1 = 20 s)")."""
    n = len(Z)
    t0, step, what = (0.0, 1.0, "windows") if t is None else \
        (float(t[0]), (float(t[-1]) - float(t[0])) / max(n - 1, 1) or 1.0, "s")
    span = float(np.ptp(Z[:, 0])) or 1.0
    unit = _round_unit(step * max(n - 1, 1) / span)
    return (lambda i: (t0 + np.asarray(i, dtype=np.float64) * step) / unit,
            f"time ({what})" if unit == 1 else f"time (1 = {unit:g} {what})")


def _round_unit(x):
    """The number among 1, 2 and 5 times a power of ten nearest to x > 0 (by ratio)."""
    k = np.floor(np.log10(x))
    options = np.array([1.0, 2.0, 5.0, 10.0]) * 10.0 ** k
    return float(options[np.argmin(np.abs(np.log(options / x)))])


def project3(Z, t=None):
    """Points to show in 3-D (`projector`: the coordinates of a 3-D path, the first three principal
    components of a larger one, a 2-D one flat, a 1-D one against time t). Returns (P (N, 3), axis
    labels, note)."""
    f, labels, note = projector(Z, t)
    return f(Z), labels, note


def no_axis(label):
    """Whether an axis labelled `label` is one the path does not have (flat, NO_AXIS)."""
    return label.startswith(NO_AXIS.split("{")[0])


def line_style(n_points):
    """(line width in points, opacity) for a path of `n_points`: full strength up to
    2000 points (about 45 s at 0.5 s windows), thinner and fainter as 1/sqrt(n) beyond."""
    k = float(np.sqrt(2000.0 / max(int(n_points), 1)))
    return float(np.clip(k, 0.35, 1.0)), float(np.clip(k, 0.3, 1.0))


def box(P, pad=PAD):
    """The drawing box of a projected path P (N, 3): (lo (3,), hi (3,)), its range plus
    `pad` times its largest span on every side."""
    lo, hi = P.min(0), P.max(0)
    margin = pad * float((hi - lo).max() or 1.0)
    return lo - margin, hi + margin


def _axes3d(fig, spec, labels, lo, hi, zoom=1.0):
    """A 3-D axes on `spec` with limits lo..hi, true proportions, readable ticks and labels
    (`zoom` < 1 leaves room for them in a small panel)."""
    from matplotlib.ticker import MaxNLocator
    ax = fig.add_subplot(spec, projection="3d", computed_zorder=False)
    ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), zlim=(lo[2], hi[2]))
    _zoom(ax, zoom)
    for axis, label in zip((ax.xaxis, ax.yaxis, ax.zaxis), labels):
        axis.set_major_locator(MaxNLocator(4))
        axis.set_label_text(label)
        axis.labelpad = 6
    ax.tick_params(labelsize=7, pad=1)
    if no_axis(labels[2]):                # a 1-D or 2-D path: seen from straight above, in its plane, the flat
        ax.view_init(elev=90, azim=-90)   # axis pointing at the viewer, not drawn (its label says why)
        ax.set_zticks([])
        ax.zaxis.line.set_visible(False)
        ax.zaxis.label.set_visible(False)
    return ax


def _zoom(ax, zoom):
    """Draw the box of the 3-D axes `ax` at `zoom` times its full size (1: it fills the axes), in true
    proportions of its limits, each side at least 0.15 times the longest so a flat path stays visible."""
    lo, hi = np.array([ax.get_xlim(), ax.get_ylim(), ax.get_zlim()], dtype=np.float64).T
    span = hi - lo
    ax.set_box_aspect(np.maximum(span, 0.15 * span.max()), zoom=zoom)


def label_boxes(ax):
    """The drawn axis labels of the 3-D axes `ax` and where they are: {label: (x0, y0, x1, y1)} in
    display pixels (y up), hidden labels (the axis a flat path lacks) left out. Valid after a draw."""
    renderer = ax.figure.canvas.get_renderer()
    return {a.label.get_text(): tuple(a.label.get_window_extent(renderer).extents)
            for a in (ax.xaxis, ax.yaxis, ax.zaxis) if a.label.get_visible() and a.label.get_text()}


def fit_labels(ax, margin=4.0, tries=5):
    """Shrink the box of the 3-D axes `ax` (its zoom, from 1, at least 0.5) as little as keeps every axis
    label inside the axes, `margin` pixels in from its edge: matplotlib puts a label outside its tick
    labels, and the z axis's, on the right of the box, would otherwise float beside the next panel.

    Draws the figure (its layout is then fixed; draw again after adding more). Returns the zoom."""
    def outside(zoom):                     # pixels by which the labels pass the margin at `zoom` (<= 0: inside)
        _zoom(ax, zoom)
        ax.figure.canvas.draw()
        b = ax.bbox
        return max([max(x1 - b.x1, b.x0 - x0, y1 - b.y1, b.y0 - y0) + margin
                    for x0, y0, x1, y1 in label_boxes(ax).values()] or [0.0])
    tried = [(0.0, -min(ax.bbox.size) / 2), (1.0, outside(1.0))]   # at zoom 0 a label is near the centre
    for _ in range(tries - 1):
        if -3.0 < tried[-1][1] <= 0:
            break                                                   # inside, within 3 pixels of the margin
        (z0, o0), (z1, o1) = tried[-2:]
        zoom = z1 - (o1 + 1.0) * (z1 - z0) / (o1 - o0) if o1 != o0 else 0.9 * z1   # secant, 1 px inside
        zoom = float(np.clip(zoom, 0.5, 1.0))
        tried.append((zoom, outside(zoom)))
    fits = [z for z, over in tried[1:] if over <= 0]
    zoom = max(fits) if fits else min(z for z, _ in tried[1:])
    if zoom != tried[-1][0]:
        outside(zoom)
    return zoom


def _time_lines(ax, P, t, order_seed=0):
    """The path's segments coloured by time t (s), thin and translucent for long paths, in a
    shuffled order. Returns the collection (for a colour bar)."""
    from matplotlib.colors import Normalize
    from mpl_toolkits.mplot3d.art3d import Line3DCollection
    seg = np.stack([P[:-1], P[1:]], axis=1)
    order = np.random.default_rng(order_seed).permutation(len(seg))
    width, alpha = line_style(len(P))
    lines = Line3DCollection(seg[order], cmap="viridis", norm=Normalize(float(t[0]), float(t[-1])),
                             linewidth=width, alpha=alpha)
    lines.set_array(np.asarray(t[:-1], dtype=np.float64)[order])
    ax.add_collection(lines)
    return lines


def time_colorbar(fig, mappable, axes, label="time in the song (m:ss)"):
    """A colour bar of time for `mappable` (coloured by seconds) beside `axes`, its ticks in m:ss at a
    round step (1, 2, 5, 10, 15 or 30 s, 1, 2, 5 or 10 minutes: at most 8 ticks). Returns it."""
    from matplotlib.ticker import FuncFormatter, MultipleLocator
    bar = fig.colorbar(mappable, ax=axes, shrink=0.8, pad=0.02)
    lo, hi = mappable.norm.vmin, mappable.norm.vmax
    steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600]
    step = next((s for s in steps if (hi - lo) / s <= 7), steps[-1] * np.ceil((hi - lo) / (7 * steps[-1])))
    bar.locator = MultipleLocator(step)
    bar.formatter = FuncFormatter(lambda x, _: clock(x))
    bar.update_ticks()
    bar.set_label(label)
    return bar


def _marker(ax, point, label, colour=START_COLOUR, size=90, shape="o"):
    """A marker above everything drawn before it (the axes must not compute z-order)."""
    return ax.scatter(*np.asarray(point, dtype=np.float64).reshape(3, 1), s=size, marker=shape, color=colour,
                      edgecolors="white", linewidths=1.2, depthshade=False, zorder=10, label=label)


def _end_marker(ax, P, t, start_size):
    """The end of the path P (N, 3), at times t (s), marked with a black square above the lines.

    At its own point; or, where the start marker (area `start_size` pt^2, drawn later, on top) would
    cover it, as a larger square beside it (`BESIDE`, up and right), joined to its point by a short
    line and labelled so: a song with silence at both ends starts and ends at the same point. Valid
    after the figure's layout and the view are fixed (drawn). Returns (the marker, whether it is beside
    its point)."""
    from matplotlib.lines import Line2D
    from matplotlib.transforms import ScaledTranslation
    from mpl_toolkits.mplot3d import proj3d
    x, y, _ = proj3d.proj_transform(*P[-1], ax.get_proj())
    apart = np.hypot(*np.subtract(pixel(ax, P[-1]), pixel(ax, P[0])))
    reach = (np.sqrt(start_size) / 2 + np.sqrt(END_SIZE) / 2 * np.sqrt(2) + 1.2) * ax.figure.dpi / 72
    beside = bool(apart < reach)                                    # the two markers would overlap
    label = f"end ({clock(t[-1])})"
    if beside:
        label += ": at the start, drawn beside it"
        ax.annotate("", xy=(x, y), xytext=BESIDE, textcoords="offset points", annotation_clip=False,
                    arrowprops=dict(arrowstyle="-", color=END_COLOUR, lw=0.9, shrinkA=0, shrinkB=0),
                    zorder=9).set_in_layout(False)
    dx, dy = BESIDE if beside else (0, 0)
    side = np.sqrt(END_SIZE) * (1.3 if beside else 1.0)             # points; larger when moved
    marker = Line2D([x], [y], ls="", marker="s", ms=side, mfc=END_COLOUR, mec="white", mew=1.2, zorder=9.5,
                    clip_on=False, label=label,
                    transform=ax.transData + ScaledTranslation(dx / 72, dy / 72, ax.figure.dpi_scale_trans))
    marker.set_in_layout(False)
    ax.add_artist(marker)
    return marker, beside


def drawn_pixel(artist):
    """Where the first point of a 2-D `artist` (a Line2D) is drawn in the saved PNG: (column, row), row
    0 at the top. Valid after the figure is drawn and saved at `DPI`."""
    col, row = artist.get_transform().transform(np.column_stack(artist.get_data())[0])
    return float(col), float(artist.figure.bbox.height - row)


def pixel(ax, point):
    """Where the 3-D `point` is drawn in the saved PNG: (column, row), row 0 at the top.

    Valid after the figure is drawn (its layout and projection fixed) and saved at `DPI`.
    """
    from mpl_toolkits.mplot3d import proj3d
    x, y, _ = proj3d.proj_transform(*np.asarray(point, dtype=np.float64), ax.get_proj())
    col, row = ax.transData.transform((x, y))
    return float(col), float(ax.figure.bbox.height - row)


def section_bounds(t_end, section_seconds=30.0, starts=""):
    """Edges (s) of the sections of a song lasting `t_end` s: (n + 1,), from 0 to t_end.

    starts : the later sections' start times, comma-separated seconds ("16,32":
    0-16, 16-32, 32-end), increasing, inside the song; when empty, sections of
    `section_seconds` (> 0) each, the last one shorter.
    """
    t_end = float(t_end)
    if str(starts).strip():
        try:
            cuts = [float(x) for x in str(starts).split(",")]
        except ValueError:
            raise refused("sections", f"={starts!r} must be start times in seconds separated by commas, "
                            "e.g. 16,32") from None
        if not all(a < b for a, b in zip([0.0] + cuts, cuts + [t_end])):
            raise refused("sections", f"={starts!r} must increase and lie inside the song"
                            + (f" (0 .. {t_end:.1f} s)" if np.isfinite(t_end) else ""))
        return np.array([0.0, *cuts, t_end])
    if not section_seconds > 0:
        raise refused("section_seconds", f"={section_seconds} must be > 0 to draw sections")
    n = max(1, int(np.ceil(t_end / section_seconds - 1e-9)))
    return np.minimum(np.arange(n + 1) * float(section_seconds), t_end)


# ---------------------------------------------------------------- trajectory

def trajectory_png(path, Z, t, title, spec=None, sections=None):
    """Save the path in 3-D coloured by time t (s), beside its coordinates against time
    (with the spectrogram above them when `spec` = (F, T, S) is given).

    Z : (N, d) path; t : (N,) time of each point (s), increasing. sections :
    optional edges (s) to mark on the time panels. The end is drawn beside the
    start, joined to its point, where the start would cover it (`_end_marker`).
    Returns facts about the picture: {"start_pixel", "end_pixel": (column, row)
    of the start's and the end's marker in the PNG, row 0 at the top,
    "end_point_pixel": of the end's point, "end_beside_start", "zoom" of the
    3-D box (`fit_labels`), "axes_box": the 3-D axes' (x0, y0, x1, y1) and
    "label_boxes": {axis label: (x0, y0, x1, y1)}, in display pixels (y up),
    "line_width", "opacity"}.
    """
    plt = _pyplot()
    Z, t = np.asarray(Z, dtype=np.float64), np.asarray(t, dtype=np.float64)
    if t.shape != (len(Z),) or len(Z) < 2:
        raise UserError(f"{len(t)} times for a path of shape {Z.shape}; rerun `python embed_audio.py`")
    P, labels, note = project3(Z, t)
    lo, hi = box(P)
    fig = plt.figure(figsize=(14, 6.5), dpi=DPI, layout="constrained")
    rows = [1.0, 1.0, 0.09] if spec is not None else [2.0, 0.09]
    grid = fig.add_gridspec(len(rows), 2, width_ratios=[1.0, 1.05], height_ratios=rows)
    ax = _axes3d(fig, grid[:, 0], labels, lo, hi)
    ax.set_title("the path, coloured by time", fontsize=9)
    first = None
    if spec is not None:
        F, T, S = spec
        sax = fig.add_subplot(grid[0, 1])
        _spectrogram(sax, F, T, S, DPI)
        sax.set_ylabel("frequency (Hz)", fontsize=8)
        sax.set_title("spectrogram", fontsize=9)
        first = sax
    cax = fig.add_subplot(grid[-2, 1], sharex=first)
    d = min(Z.shape[1], 3)
    for k, colour in zip(range(d), ("#444444", "#d95f02", "#7570b3")):
        cax.plot(t, P[:, k], color=colour, lw=0.7, label=labels[k])
    cax.set_ylabel("coordinates", fontsize=8)
    cax.legend(loc="upper right" if spec is not None else "lower right", fontsize=7, ncol=d, framealpha=0.9)
    strip = fig.add_subplot(grid[-1, 1], sharex=cax)
    strip.imshow(t[None, :], aspect="auto", cmap="viridis", extent=(t[0], t[-1], 0, 1),
                 vmin=float(t[0]), vmax=float(t[-1]), interpolation="nearest")     # the lines' colours (_time_lines)
    strip.set_yticks([])
    strip.set_xlabel("time in the song (s); the strip is the path's colour at that time", fontsize=8)
    for a in (first, cax):
        if a is not None:
            a.tick_params(labelbottom=False, labelsize=7)
            a.set_xlim(t[0], t[-1])
    strip.tick_params(labelsize=7)
    if sections is not None:
        edges = np.asarray(sections, dtype=np.float64)
        for a in (first, cax):
            if a is not None:
                for e in edges[1:-1]:
                    a.axvline(e, color="white" if a is first else "0.5", lw=0.8, ls="--")
        top = first if first is not None else cax
        for i, (a0, a1) in enumerate(zip(edges[:-1], edges[1:])):
            top.text((a0 + a1) / 2, 0.97, str(i + 1), transform=top.get_xaxis_transform(), ha="center",
                     va="top", fontsize=8, color="white" if top is first else "0.3")
    put_text(fig.suptitle, title + (f"\n{note}" if note else ""), fontsize=11)
    zoom = fit_labels(ax)              # before the path is added (quick draws); the layout and the view are fixed
    _time_lines(ax, P, t)
    start = _marker(ax, P[0], f"start ({clock(t[0])})", size=START_SIZE)    # zorder 10: on top of everything
    end, beside = _end_marker(ax, P, t, START_SIZE)
    ax.legend(handles=[end, start], loc="upper left", fontsize=8, framealpha=0.9)
    fig.canvas.draw()
    facts = {"start_pixel": pixel(ax, P[0]), "end_pixel": drawn_pixel(end), "end_point_pixel": pixel(ax, P[-1]),
             "end_beside_start": beside,
             "zoom": zoom, "axes_box": tuple(ax.bbox.extents), "label_boxes": label_boxes(ax),
             "line_width": line_style(len(P))[0], "opacity": line_style(len(P))[1]}
    _save(fig, path)
    return facts


def trajectory_sections_png(path, Z, t, title, edges, columns=4):
    """Save one 3-D panel per section of the song: the whole path faint, the section
    coloured by time (the same colours as the whole-song picture), its first point marked.

    Z : (N, d); t : (N,) s; edges : (n + 1,) section edges in s (`section_bounds`).
    All panels share one view and one box. Returns the number of panels drawn.
    """
    plt = _pyplot()
    from matplotlib.colors import Normalize
    from mpl_toolkits.mplot3d.art3d import Line3DCollection
    Z, t = np.asarray(Z, dtype=np.float64), np.asarray(t, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    P, labels, note = project3(Z, t)
    lo, hi = box(P)
    spans = [(a, b) for a, b in zip(edges[:-1], edges[1:]) if np.sum((t >= a) & (t <= b)) >= 2]
    if not spans:
        raise UserError("no section holds two points of the path; choose a longer SECTION_SECONDS")
    cols = min(columns, len(spans))
    nrows = int(np.ceil(len(spans) / cols))
    fig = plt.figure(figsize=(3.6 * cols, 3.4 * nrows + 0.6), dpi=DPI, layout="constrained")
    grid = fig.add_gridspec(nrows, cols)
    norm = Normalize(float(t[0]), float(t[-1]))
    seg = np.stack([P[:-1], P[1:]], axis=1)
    for i, (a, b) in enumerate(spans):
        ax = _axes3d(fig, grid[i // cols, i % cols], labels, lo, hi, zoom=0.82)
        ax.add_collection(Line3DCollection(seg, colors="0.75", linewidth=0.3, alpha=0.35))
        inside = np.flatnonzero((t >= a) & (t <= b))
        part = Line3DCollection(seg[inside[:-1]], cmap="viridis", norm=norm, linewidth=0.9)
        part.set_array(t[inside[:-1]])
        ax.add_collection(part)
        _marker(ax, P[inside[0]], None, size=40)
        ax.set_title(f"{i + 1}: {clock(a)}-{clock(b)}", fontsize=9)
        ax.tick_params(labelsize=6, pad=0)
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.label.set_fontsize(7)
            axis.labelpad = 0
    put_text(fig.suptitle, f"{title}: one section at a time (start of each marked)" + (f"\n{note}" if note else ""),
             fontsize=10)
    _save(fig, path)
    return len(spans)


# ---------------------------------------------------------------- HTML

def library_source():
    """The plotly.js that the installed plotly package ships (the version plotly.py was built with)."""
    import plotly
    src = Path(plotly.__file__).parent / "package_data" / LIBRARY_NAME
    if not src.is_file():
        raise UserError(f"the plotly package has no {LIBRARY_NAME} at {src}; reinstall it: "
                        "`.venv/bin/pip install --force-reinstall -r requirements.txt`")
    return src


def install_library(dest):
    """Put one copy of plotly.min.js at `dest` (atomically), unless an identical one is there.
    Returns its sha256."""
    src = library_source()
    want = provenance.file_hash(src)
    dest = Path(dest)
    if dest.is_file() and provenance.file_hash(dest) == want:
        return want
    with store.atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    return want


def library_path(paths):
    """The one plotly.min.js of an output folder: ``<OUTPUT_DIR>/plotly.min.js``."""
    return Path(paths.outputs) / LIBRARY_NAME


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>html, body {{ margin: 0; height: 100%; overflow: hidden; }}</style>
</head>
<body>
{plot}
</body>
</html>
"""


def write_html(fig, path, library):
    """Write a plotly figure to `path` as a page that loads the shared plotly.js at `library`
    (installed there if it is missing or differs) by relative path. Returns {relative src: sha256}.

    The plot fills the window and follows its size (plotly's `responsive`), the page without margins, so
    none of it is cut off below the window (plotly's own page keeps the body's 8 px margin around a plot
    of the window's full height)."""
    import html
    path = Path(path)
    store.make_folder(path.parent)
    sha = install_library(library)
    src = Path(os.path.relpath(Path(library).resolve(), path.parent.resolve())).as_posix()
    plot = fig.to_html(include_plotlyjs=src, full_html=False, default_width="100%", default_height="100%",
                       config={"responsive": True, "displaylogo": False})
    title = html.escape((fig.layout.title.text or "").split("<br>")[0])
    with store.atomic_path(path) as tmp:
        Path(tmp).write_text(PAGE.format(title=title, plot=plot), encoding="utf-8")
    return {src: sha}


def trajectory_html(path, Z, t, title, library):
    """Save an interactive 3-D plot (plotly, offline; loads the shared plotly.js at `library`): the path as
    a line coloured by time t (s), with its colour bar, and the start and the end as named markers (the
    end's square larger, so it shows around the start when a song ends where it starts); hover shows the
    time. Returns {relative src of plotly.js: its sha256}."""
    import plotly.graph_objects as go
    P, labels, note = project3(Z, t)
    t = np.asarray(t, dtype=np.float64)
    width, alpha = line_style(len(P))
    trace = go.Scatter3d(x=P[:, 0], y=P[:, 1], z=P[:, 2], mode="lines", name="the path, coloured by time",
                         opacity=alpha, line=dict(color=t, colorscale="Viridis", width=1 + 3 * width, showscale=True,
                                                  colorbar=dict(title=dict(text="time (s)"), len=0.8)),
                         customdata=t, hovertemplate="t = %{customdata:.2f} s<extra></extra>")
    end = _html_marker(P[-1], f"end ({clock(t[-1])})", END_COLOUR, size=8, symbol="square")
    start = _html_marker(P[0], f"start ({clock(t[0])})", START_COLOUR, size=7, symbol="circle")
    lo, hi = box(P)
    span = hi - lo
    aspect = np.maximum(span, 0.15 * span.max()) / span.max()          # true proportions, as in the PNG
    fig = go.Figure([trace, end, start])
    fig.update_layout(title=dict(text=title + (f"<br><sub>{note}</sub>" if note else "")), autosize=True,
                      scene=dict({"camera": HTML_CAMERA}, **_scene(labels, lo.tolist(), hi.tolist()),
                                 aspectmode="manual", aspectratio=dict(zip("xyz", aspect.tolist()))),
                      margin=dict(l=0, r=0, t=70 if note else 50, b=0),
                      legend=dict(x=0.01, y=0.98, bgcolor="rgba(255,255,255,0.8)"))
    return write_html(fig, path, library)


def _html_marker(point, name, colour, size, symbol):
    """A named marker (plotly, in the legend) at the 3-D `point` (3,), with a white edge."""
    import plotly.graph_objects as go
    x, y, z = (np.asarray(point, dtype=np.float64)[k:k + 1] for k in range(3))
    return go.Scatter3d(x=x, y=y, z=z, mode="markers", name=name, hovertemplate=f"{name}<extra></extra>",
                        marker=dict(size=size, color=colour, symbol=symbol, line=dict(color="white", width=1)))


def _scene(labels, lo=None, hi=None):
    """A plotly 3-D scene: axes titled `labels`, ranges lo..hi if given; a 1-D or 2-D path (`no_axis`)
    seen from straight above, as in the PNGs, with no tick labels on the axis it does not have."""
    scene = {}
    for k, (name, label) in enumerate(zip(("xaxis", "yaxis", "zaxis"), labels)):
        scene[name] = dict(title=label, **({"showticklabels": False} if no_axis(label) else {}),
                           **({"range": [lo[k], hi[k]]} if lo is not None else {}))
    if no_axis(labels[2]):
        scene["camera"] = dict(eye=dict(x=0, y=0, z=2.2), up=dict(x=0, y=1, z=0))
    return scene


# ---------------------------------------------------------------- forecasts

def clip_to_box(F, lo, hi):
    """The parts of a polyline F (M, 3) inside the box lo..hi, cut where it crosses the box's faces.

    Returns (pieces: list of (m, 3) arrays, each inside the box, facts:
    {"steps_outside": points of F outside, "first_step_outside": index of the
    first one or None}).
    """
    F = np.asarray(F, dtype=np.float64)
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    inside = np.all((F >= lo) & (F <= hi), axis=1)
    pieces, current = [], []
    for i in range(len(F)):
        if i > 0 and inside[i] != inside[i - 1]:            # crossing: add the point on the face
            a, b = F[i - 1], F[i]
            d = b - a
            with np.errstate(divide="ignore", invalid="ignore"):
                s_lo, s_hi = (lo - a) / d, (hi - a) / d
            s_enter = np.nanmax(np.where(d != 0, np.minimum(s_lo, s_hi), -np.inf))
            s_leave = np.nanmin(np.where(d != 0, np.maximum(s_lo, s_hi), np.inf))
            s = s_leave if inside[i - 1] else s_enter
            current.append(a + np.clip(s, 0.0, 1.0) * d)
            if inside[i - 1]:
                pieces.append(np.array(current))
                current = []
        if inside[i]:
            current.append(F[i])
    if current:
        pieces.append(np.array(current))
    out = np.flatnonzero(~inside)
    return pieces, {"steps_outside": int(len(out)), "first_step_outside": int(out[0]) if len(out) else None}


def reach(P, F):
    """How far F (M, 3) goes, as the span of P and F together over P's span, largest over
    the axes: 1 when F stays within P's range, 20 for a forecast spanning 20 times it."""
    P, F = np.asarray(P, dtype=np.float64), np.asarray(F, dtype=np.float64)
    lo, hi = P.min(0), P.max(0)
    span = hi - lo
    both = np.maximum(hi, F.max(0)) - np.minimum(lo, F.min(0))
    return float(np.max(np.where(span > 0, both / np.where(span > 0, span, 1.0), 1.0)))


def _forecast_view(Z, forecast, ic):
    """Project the path, the forecast and the true continuation with the path's own view
    (PCA of the path only, so a runaway forecast cannot change it)."""
    Z, forecast = np.asarray(Z, dtype=np.float64), np.asarray(forecast, dtype=np.float64)
    if forecast.ndim != 2 or forecast.shape[1] != Z.shape[1] or len(forecast) < 1:
        raise UserError(f"a forecast of shape {forecast.shape} does not fit a {Z.shape[1]}-D path")
    if not 0 <= ic < len(Z):
        raise UserError(f"initial condition {ic} is not an index of the {len(Z)}-point path")
    f, labels, note = projector(Z)
    truth = Z[ic:ic + len(forecast)]
    return f(Z), f(forecast, first=ic), f(truth, first=ic), labels, note


def _forecast_frame(P, F, d):
    """The frame of a forecast picture and what the forecast F does in it: (lo, hi, pieces of F inside,
    facts of `clip_to_box` with "reach").

    The frame is the path P's box (`box`); for a 1-D path drawn against time its time axis also
    reaches the forecast's last step (going on past the song's end is not leaving the frame). The reach
    is measured on the path's coordinates only."""
    lo, hi = box(P)
    if d == 1:
        lo[1], hi[1] = (x[1] for x in box(np.vstack([P, F])))
    pieces, facts = clip_to_box(F, lo, hi)
    k = min(d, 3)
    facts["reach"] = reach(P[:, :k], F[:, :k])
    return lo, hi, pieces, facts


def _clip_note(facts, steps):
    """What a clipped forecast did, in words ("" when it stayed in the frame)."""
    if facts["first_step_outside"] is None:
        return ""
    return (f"forecast leaves the frame (the path's range + {PAD:.0%}) at step {facts['first_step_outside']}, "
            f"{facts['steps_outside']} of {steps} steps outside, reaching {facts['reach']:.3g}x the path's "
            "range; cut at the frame")


def forecast_png(path, Z, forecast, ic, title):
    """The path faint, the true continuation from `ic` in blue, the forecast in red and
    the initial condition marked, in 3-D beside the coordinates against the step.

    Z : (N, d) path; forecast : (steps + 1, d) from Z[ic], in the same units.
    The axes are the path's range (plus a margin) whatever the forecast does: a
    forecast that leaves it is cut at its faces and the picture says so.
    Returns facts: {"limits": [(lo, hi)] * 3 of the 3-D axes, "ic_pixel",
    "steps_outside", "first_step_outside" (of the frame, `clip_to_box`),
    "reach" (`reach`), "truth_steps"}.
    """
    plt = _pyplot()
    P, F, T, labels, note = _forecast_view(Z, forecast, ic)
    lo, hi, pieces, facts = _forecast_frame(P, F, np.asarray(Z).shape[1])
    steps = len(F) - 1
    fig = plt.figure(figsize=(13, 6.2), dpi=DPI, layout="constrained")
    grid = fig.add_gridspec(3, 2, width_ratios=[1.1, 1.0])
    ax = _axes3d(fig, grid[:, 0], labels, lo, hi)
    width, alpha = line_style(len(P))
    ax.plot(*P.T, color="0.65", lw=0.5 * width, alpha=0.5, label="the path")
    ax.plot(*T.T, color=TRUTH_COLOUR, lw=1.6, label=f"true continuation ({len(T) - 1} steps"
            + (", the song ends" if len(T) < len(F) else "") + ")")
    label = f"forecast ({steps} steps)"
    if facts["first_step_outside"] is not None:
        label = (f"forecast ({steps} steps): leaves the frame at step {facts['first_step_outside']},\n"
                 f"{facts['steps_outside']} steps outside, reaching {facts['reach']:.3g}x the path's range;\n"
                 "cut at the frame (x: where it leaves)")
    for j, piece in enumerate(pieces):
        ax.plot(*piece.T, color=FORECAST_COLOUR, lw=1.6, label=label if j == 0 else None)
    if not pieces:
        ax.plot([], [], [], color=FORECAST_COLOUR, lw=1.6, label=label)
    for p in pieces:       # where the forecast leaves the frame
        if facts["first_step_outside"] is not None and not np.allclose(p[-1], F[-1]):
            ax.scatter(*p[-1].reshape(3, 1), marker="X", s=70, color=FORECAST_COLOUR, edgecolors="white",
                       depthshade=False, zorder=11)
    _marker(ax, P[ic], f"initial condition (index {ic})")
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    d = min(np.asarray(Z).shape[1], 3)
    for k in range(d):
        cax = fig.add_subplot(grid[k, 1])
        cax.plot(np.arange(len(T)), T[:, k], color=TRUTH_COLOUR, lw=1.2, label="true")
        cax.plot(np.arange(len(F)), F[:, k], color=FORECAST_COLOUR, lw=1.2, label="forecast")
        cax.set_ylim(lo[k], hi[k])           # the path's range: a runaway is cut at the frame
        cax.set_xlim(0, steps)
        cax.set_ylabel(labels[k], fontsize=8)
        cax.tick_params(labelsize=7)
        if k == 0:
            cax.legend(loc="upper right", fontsize=7, ncol=2)
            cax.set_title("coordinates against the step (axes: the path's range)", fontsize=9)
        if k == d - 1:
            cax.set_xlabel("step from the initial condition", fontsize=8)
    put_text(fig.suptitle, title + f"\nunits: {FORECAST_UNITS}" + (f"; {note}" if note else ""), fontsize=10)
    fig.canvas.draw()
    facts.update(limits=[ax.get_xlim(), ax.get_ylim(), ax.get_zlim()], ic_pixel=pixel(ax, P[ic]),
                 truth_steps=len(T) - 1)
    _save(fig, path)
    return facts


def forecast_html(path, Z, forecast, ic, title, library):
    """The forecast picture as an interactive plotly page (same units, box and clipping as the PNG),
    loading the shared plotly.js at `library`. Returns {relative src of plotly.js: its sha256}."""
    import plotly.graph_objects as go
    P, F, T, labels, note = _forecast_view(Z, forecast, ic)
    lo, hi, pieces, facts = _forecast_frame(P, F, np.asarray(Z).shape[1])
    gap = np.full((1, 3), np.nan)
    drawn = np.vstack([x for p in pieces for x in (p, gap)]) if pieces else gap
    fig = go.Figure([
        go.Scatter3d(x=P[:, 0], y=P[:, 1], z=P[:, 2], mode="lines", name="the path",
                     line=dict(color="lightgray", width=2)),
        go.Scatter3d(x=T[:, 0], y=T[:, 1], z=T[:, 2], mode="lines", name="true continuation",
                     line=dict(color=TRUTH_COLOUR, width=4), customdata=np.arange(len(T)),
                     hovertemplate="true, step %{customdata}<extra></extra>"),
        go.Scatter3d(x=drawn[:, 0], y=drawn[:, 1], z=drawn[:, 2], mode="lines", name="forecast",
                     line=dict(color=FORECAST_COLOUR, width=5), connectgaps=False),
        go.Scatter3d(x=P[ic:ic + 1, 0], y=P[ic:ic + 1, 1], z=P[ic:ic + 1, 2], mode="markers",
                     name="initial condition", marker=dict(color=START_COLOUR, size=6))])
    sub = "; ".join(x for x in (f"units: {FORECAST_UNITS}", note, _clip_note(facts, len(F) - 1)) if x)
    fig.update_layout(title=title + f"<br><sub>{sub}</sub>",
                      scene=dict(**_scene(labels, lo.tolist(), hi.tolist()), aspectmode="manual",
                                 aspectratio=dict(zip("xyz", ((hi - lo) / (hi - lo).max()).tolist()))))
    return write_html(fig, path, library)
