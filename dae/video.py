"""Stage 4: a video of a point moving along the embedded path, with the song's audio.

Sync: the point shown at time t is the path interpolated to the window whose
*centre* is at t (window j covers columns j .. j+width-1, so its centre is at
(j + width/2) * 1024 / sr seconds). Before the first centre and after the last
the point rests at the ends of the path.

A frame costs the same however long the song is. Everything static (title,
spectrogram axes and labels) is drawn once by matplotlib; the faint path is
sampled once along its length at sub-pixel spacing and merged into one sample
per pixel-sized cell of 3-D space (so its per-frame cost is bounded by what
the panel's pixels can show, not by the number of path points), then
projected and splatted with numpy for each camera angle; the point, tail,
start mark and clock are stamped per frame. Worker processes draw frames into
a shared buffer and the ffmpeg that imageio-ffmpeg ships encodes them in
order (H.264 yuv420p) and muxes in the audio (AAC).

Ctrl-C is this process's to handle: the workers ignore it and ffmpeg runs in a
session of its own, so an interrupt ends the render with the stage's one line
and nothing half-written; a worker whose parent is gone ends quietly.
"""
import gc
import mmap
import multiprocessing as mp
import signal
from collections import deque
from pathlib import Path

import numpy as np

from dae import ffmpeg, store
from dae.errors import SettingError, UserError, refused

MARKER_RGB = (255, 0, 0)     # the current point, pure red (the tests find it by colour)
START_RGB = (255, 255, 255)  # the start of the path, white
TAIL_RGB = (255, 176, 0)     # the tail, orange
MIN_SIDE = 64                # pixels: the smallest frame the layout fits in
PATH_ALPHA = 0.8             # most opacity of the faint path where it is drawn over itself many times
ALPHA_LEVELS = 64            # opacity levels of the faint path
PATH_HALF = 0.4              # path length (px) in a pixel at which the faint path is half that opaque
SAMPLES_PER_PIXEL = 0.07     # the faint path is drawn from at most this many merged samples per pixel of the view
PRESET = "veryfast"          # x264 preset of the video
X264_PARAMS = "me=dia:subme=1"  # on top of the preset: a cheaper motion search (about 1/6 less encoding, ~7% larger)
SPEC_SPAN = 5.0              # s either side of "now" in the spectrogram panel


class Timeline:
    """Where the point is at time t (s): linear interpolation of P (N, 3) at the
    fractional index whose window centre is t.

    The centres are taken as evenly spaced, t0 + i * step with the mean step
    (t_center[-1] - t0) / (N - 1): a video's frame times come from ffmpeg with
    6 significant digits, so their differences wobble a little."""

    def __init__(self, P, t_center):
        self.P = np.asarray(P, dtype=np.float64)
        self.t0 = float(t_center[0])
        self.step = float(t_center[-1] - t_center[0]) / (len(t_center) - 1) if len(t_center) > 1 else 1.0

    def index(self, t):
        return np.clip((np.asarray(t, dtype=np.float64) - self.t0) / self.step, 0, len(self.P) - 1)

    def position(self, t):
        u = self.index(t)
        i = np.minimum(np.floor(u).astype(int), max(len(self.P) - 2, 0))
        f = (u - i)[..., None]
        j = np.minimum(i + 1, len(self.P) - 1)
        return self.P[i] * (1 - f) + self.P[j] * f


def path_samples(Q, times, spacing=1.0, budget=None):
    """Samples along the polyline Q (N, 3), at most `spacing` apart, merged per cell.

    Q : (N, 3) in pixels (1 unit = 1 px on screen at any camera angle);
    times : (N,) s; spacing : px. Each segment gets ceil(length / spacing)
    samples at the centres of equal parts, each weighing the path length it
    stands for (px). Samples are then merged per cube of side `spacing`: one
    sample per occupied cube at the weighted mean position and time, with the
    summed weight (so a stretch drawn over itself many times stays one sample).
    If more than `budget` cubes are occupied, the cubes grow (x1.1 at a time)
    until at most `budget` are. Returns (positions (M, 3) px, weights (M,) px,
    times (M,) s, cube side px); M is bounded by the cubes the path passes
    through and by `budget`, not by N.
    """
    Q = np.asarray(Q, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if len(Q) < 2:
        return Q.copy(), np.ones(len(Q)), times.copy(), float(spacing)
    seg = np.diff(Q, axis=0)
    length = np.linalg.norm(seg, axis=1)
    n = np.maximum(np.ceil(length / spacing).astype(np.int64), 1)
    which = np.repeat(np.arange(len(seg)), n)
    first = np.cumsum(n) - n
    frac = (np.arange(n.sum()) - first[which] + 0.5) / n[which]
    pos = Q[which] + seg[which] * frac[:, None]
    tt = times[which] + (times[which + 1] - times[which]) * frac
    w = (length / n)[which]
    side = float(spacing)
    while True:
        cell = np.floor((pos - pos.min(0)) / side).astype(np.int64)
        span = cell.max(0) + 1
        key = (cell[:, 0] * span[1] + cell[:, 1]) * span[2] + cell[:, 2]
        _, inverse = np.unique(key, return_inverse=True)
        if budget is None or inverse.max() + 1 <= budget:
            break
        side *= 1.1
    total = np.bincount(inverse, w)
    merged = np.stack([np.bincount(inverse, w * pos[:, k]) for k in range(3)], 1) / total[:, None]
    return merged, total, np.bincount(inverse, w * tt) / total, side


def _disc(h, w, cx, cy, radius):
    """Coverage (0..1) of a disc of `radius` px centred at pixel coordinates (cx, cy),
    on the pixels of its bounding box inside an (h, w) image: (rows slice, cols slice, (r, c) float32)."""
    r0, r1 = max(int(np.floor(cy - radius - 1)), 0), min(int(np.ceil(cy + radius + 2)), h)
    c0, c1 = max(int(np.floor(cx - radius - 1)), 0), min(int(np.ceil(cx + radius + 2)), w)
    if r0 >= r1 or c0 >= c1:
        return slice(0, 0), slice(0, 0), np.zeros((0, 0), np.float32)
    d = np.hypot(np.arange(r0, r1)[:, None] - cy, np.arange(c0, c1)[None, :] - cx)
    return slice(r0, r1), slice(c0, c1), np.clip(radius + 0.5 - d, 0, 1).astype(np.float32)


def _blend(region, rgb, alpha):
    """region (h, w, 3) uint8, in place: alpha (h, w) of colour rgb over it."""
    a = alpha[..., None]
    region[:] = (region * (1 - a) + np.asarray(rgb, np.float32) * a + 0.5).astype(np.uint8)


class Renderer:
    """Draws the frame at time t (s) into an RGB array (height, width, 3) uint8.

    P : (N, 3) the path; t_center : (N,) s, the centre of each point's window
    (evenly spaced). The 3-D view shows the whole path faint (thin, coloured
    by time with viridis, more opaque where it passes many times, nearer parts
    brighter), its start as a white dot, the last `tail_seconds` s as an
    orange tail fading in, and the current point (pure red, MARKER_RGB). The
    camera turns about the vertical axis at `degrees_per_second`, seen from
    `elevation` degrees above; the path is scaled (the same in every
    direction, so proportions are true) as large as fits the view at every
    angle the video shows (`duration` s, default: the last window's end), so
    it reaches the view's edges at some angle.

    The panels beside the 3-D view are pluggable:

    spec : (F (n_freq,) Hz, T (n_time,) s column centres, S (n_freq, n_time)
        magnitude, duration) or None. A spectrogram strip under the view,
        SPEC_SPAN s either side of "now" (a white cursor).
    frames : (images, times) or None, for a video source. images: (M, h, w)
        grayscale or (M, h, w, 3) RGB uint8 (any array indexable by frame,
        e.g. a np.memmap: only the frames shown are read); times: (M,) s,
        non-decreasing. A panel beside the view (right) shows at time t the
        image with the largest time <= t (black before the first), scaled to
        the panel by nearest neighbour, aspect ratio kept.

    Either, both or neither may be given. Bad input raises UserError.
    """

    def __init__(self, P, t_center, spec=None, frames=None, width=1280, height=720, tail_seconds=1.0,
                 degrees_per_second=6.0, elevation=25.0, title="", duration=None):
        P = np.asarray(P, dtype=np.float64)
        t_center = np.asarray(t_center, dtype=np.float64)
        if P.ndim != 2 or P.shape[1] != 3 or len(P) < 1 or not np.all(np.isfinite(P)):
            raise UserError(f"the path must be finite with shape (N, 3), got {P.shape}")
        if t_center.shape != (len(P),) or not np.all(np.isfinite(t_center)):
            raise UserError(f"t_center must be finite with shape ({len(P)},), got {t_center.shape}")
        if not tail_seconds >= 0:
            raise refused("tail_seconds", f"={tail_seconds} must be at least 0")
        self.size = (int(width), int(height))
        self.rate, self.elev = float(degrees_per_second), np.radians(elevation)
        self.tail_seconds = float(tail_seconds)
        if duration is None:
            duration = float(t_center[-1] + t_center[0]) if len(t_center) else 0.0
        self.duration = float(duration)
        centre = (P.max(0) + P.min(0)) / 2
        self.P = (P - centre) / (np.ptp(P, axis=0).max() / 2 or 1.0)     # inside [-1, 1]^3
        self.timeline = Timeline(self.P, t_center)
        self.t_center = t_center
        self.frames = self._check_frames(frames)
        self._layout(spec is not None)
        self._fit()
        self._background(spec, title)
        scale = height / 720
        self.point_radius, self.start_radius, self.tail_radius = max(6.0 * scale, 2.5), max(4 * scale, 2), \
            max(2.0 * scale, 1.0)
        r0, r1, c0, c1 = self.view_box
        self.samples = path_samples(self.P * self.scale, t_center, 1.0, int(SAMPLES_PER_PIXEL * (r1 - r0) * (c1 - c0)))
        import matplotlib
        lut = matplotlib.colormaps["viridis"](np.linspace(0.2, 1.0, 256))[:, :3] * 255
        opacity = PATH_ALPHA * np.arange(ALPHA_LEVELS) / (ALPHA_LEVELS - 1)
        # (time tone x opacity level) -> the colour over black, premultiplied: one gather per lit pixel
        self.path_colours = (lut[:, None, :] * opacity[None, :, None] + 0.5).astype(np.uint8).reshape(-1, 3)
        r0, r1, c0, c1 = self.view_box
        if self.background[r0:r1, c0:c1].any():
            raise AssertionError("the 3-D view's background must be black: the faint path is composited over black")
        t_lo, t_hi = float(t_center[0]), float(t_center[-1])
        shade = ((self.samples[2] - t_lo) / ((t_hi - t_lo) or 1.0) * 255).clip(0, 255)
        self.sample_pos = self.samples[0].astype(np.float32)
        self.sample_weight = self.samples[1].astype(np.float32)
        self.near_scale = np.float32(1 / (2 * np.sqrt(3) * self.scale))       # nearness / its range
        m = len(self.sample_pos)
        self._splat_idx, self._splat_w, self._splat_tw = np.empty(4 * m, np.intp), np.empty(4 * m), np.empty(4 * m)
        self._splat_shade = np.tile(shade, 4)
        self._shown = (None, None)

    # ---------------------------------------------------------------- layout
    def _check_frames(self, frames):
        if frames is None:
            return None
        try:
            images, times = frames
        except (TypeError, ValueError):
            raise UserError("frames must be a pair (images, times)") from None
        times = np.asarray(times, dtype=np.float64)
        shape = tuple(getattr(images, "shape", ()))
        if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] != 3) or getattr(images, "dtype", None) != np.uint8:
            raise UserError(f"frames' images must be uint8 (M, h, w) or (M, h, w, 3), got "
                            f"{getattr(images, 'dtype', type(images).__name__)} {shape}")
        if times.shape != (shape[0],) or shape[0] < 1 or not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0):
            raise UserError(f"frames' times must be {shape[0]} finite, non-decreasing seconds, got shape {times.shape}")
        if shape[1] < 1 or shape[2] < 1:
            raise UserError(f"frames' images are empty: {shape}")
        return images, times

    def _layout(self, with_spec):
        """Pixel boxes (row0, row1, col0, col1): the 3-D view, the frames panel, the spectrogram axes."""
        w, h = self.size
        self.spec_top = 0.26 if with_spec else 0.0
        upper = int(round(h * (1 - self.spec_top)))
        band = int(round(0.075 * h))                       # the clock and the title above the view
        margin = max(int(round(0.015 * h)), 2)
        r0, r1 = band, upper - margin
        c0, c1 = margin, w - margin
        self.frame_box = None
        if self.frames is not None:
            ih, iw = self.frames[0].shape[1:3]
            fh = r1 - r0
            fw = min(int(round(fh * iw / ih)), (w - 3 * margin) // 2)
            fh = min(fh, int(round(fw * ih / iw)))
            fw, fh = max(fw, 1), max(fh, 1)
            top = r0 + (r1 - r0 - fh) // 2
            self.frame_box = (top, top + fh, w - margin - fw, w - margin)
            c1 = w - 2 * margin - fw
            self.frame_rows = np.minimum(((np.arange(fh) + 0.5) * ih / fh).astype(int), ih - 1)
            self.frame_cols = np.minimum(((np.arange(fw) + 0.5) * iw / fw).astype(int), iw - 1)
        self.view_box = (r0, r1, c0, c1)

    def _fit(self):
        """Scale (px per unit) and screen centre so that the path at every camera
        angle of the video stays inside the view, touching it at some angle."""
        r0, r1, c0, c1 = self.view_box
        turn = min(abs(self.rate) * max(self.duration, 0.0), 360.0)
        az = np.linspace(0.0, turn, max(int(np.ceil(turn / 2.0)) + 1, 2)) * np.sign(self.rate or 1.0)
        lo, hi = np.full(2, np.inf), np.full(2, -np.inf)
        for a in np.radians(az):                                 # one angle at a time: memory O(N)
            xy = self._project(self.P, a)
            lo, hi = np.minimum(lo, xy.min(0)), np.maximum(hi, xy.max(0))
        extent = np.maximum(hi - lo, 1e-9)
        pad = 3.0 + 0.5 * max(6.0 * self.size[1] / 720, 2.5)   # the point's radius must fit too
        self.scale = float(min((c1 - c0 - 2 * pad) / extent[0], (r1 - r0 - 2 * pad) / extent[1]))
        mid = (lo + hi) / 2
        self.origin = ((c0 + c1 - 1) / 2 - mid[0] * self.scale, (r0 + r1 - 1) / 2 + mid[1] * self.scale)

    def _background(self, spec, title):
        """Everything that does not move, drawn once with matplotlib: title, spectrogram axes, labels."""
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib.figure import Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        w, h = self.size
        dpi = 100
        fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi, facecolor="black")
        canvas = FigureCanvasAgg(fig)
        fs = 11 * h / 720
        from dae.fonts import put_text
        put_text(fig.text, title, 0.99, 0.965, color="0.8", fontsize=fs, va="center", ha="right")
        self.strip = None
        sax = None
        if spec is not None:
            sax = self._spec_axes(fig, spec)
        canvas.draw()
        self.background = np.array(np.asarray(canvas.buffer_rgba())[..., :3])
        if sax is not None:
            x0, y0, x1, y1 = np.round(sax.get_window_extent().extents).astype(int)
            self.strip = (h - y1, h - y0, x0, x1)                          # rows, columns of the panel
            F = spec[0]
            n_rows, n_cols = (h - y0) - (h - y1), x1 - x0
            rows = ((1 - (np.arange(n_rows) + 0.5) / n_rows) * len(F)).astype(int).clip(0, len(F) - 1)
            # the whole song as one strip at the panel's pixels per second, SPEC_SPAN s of black either side:
            # a frame copies a slice of it (cost bounded by the panel, not the song)
            self.strip_rate = n_cols / (2 * SPEC_SPAN)                      # px per second
            start = -SPEC_SPAN - self.strip_rate ** -1                       # s at the strip's first column
            centres = start + (np.arange(int(np.ceil((self.t_last + 2 * SPEC_SPAN + 2 / self.strip_rate)
                                                     * self.strip_rate)) + n_cols) + 0.5) / self.strip_rate
            cols = np.floor((centres - self.t_first) / self.hop).astype(int)
            inside = (cols >= 0) & (cols < self.colours.shape[1])
            image = self.colours[rows][:, cols.clip(0, self.colours.shape[1] - 1)]
            image[:, ~inside] = 0
            self.strip_image, self.strip_start = np.ascontiguousarray(image), start
            del self.colours
        self.glyphs, self.glyph_advance = self._glyphs(fs * 14 / 11)

    def _spec_axes(self, fig, spec):
        import matplotlib
        F, T, S = spec[0], spec[1], spec[2]
        span = SPEC_SPAN
        top = self.spec_top
        h = self.size[1]
        sax = fig.add_axes([0.05, 0.05, 0.93, top - 0.08], facecolor="black")
        sax.set_xlim(-span, span)
        sax.set_ylim(F[0], F[-1])
        sax.set_xticks(np.arange(-int(span) + 1, int(span)))
        sax.set_xticklabels([f"{k:+d} s" if k else "now" for k in range(-int(span) + 1, int(span))])
        sax.tick_params(colors="0.8", labelsize=9 * h / 720)
        sax.set_ylabel("Hz", color="0.8", fontsize=9 * h / 720)
        db = 20 * np.log10(np.maximum(S, 1e-12) / max(float(S.max()), 1e-12))
        norm = matplotlib.colors.Normalize(vmin=max(float(db.min()), -80.0), vmax=0.0)
        self.colours = (matplotlib.colormaps["inferno"](norm(db))[..., :3] * 255).astype(np.uint8)
        self.hop = float(T[1] - T[0]) if len(T) > 1 else 1.0
        self.t_first = float(T[0]) - self.hop / 2
        self.t_last = max(float(T[-1]) + self.hop / 2, self.duration)
        return sax

    @staticmethod
    def _glyphs(fontsize):
        """Coverage masks of the clock's characters (monospace), drawn once: {char: (h, w) float32}, advance px."""
        from matplotlib.figure import Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        chars = "0123456789:."
        cell = int(np.ceil(fontsize * 100 / 72 * 1.5)) + 4
        fig = Figure(figsize=(cell * len(chars) / 100, cell / 100), dpi=100, facecolor="black")
        canvas = FigureCanvasAgg(fig)
        texts = [fig.text((k * cell + 2) / (cell * len(chars)), 0.3, c, color="white", fontsize=fontsize,
                          family="monospace") for k, c in enumerate(chars)]
        canvas.draw()
        img = np.asarray(canvas.buffer_rgba())[..., 0].astype(np.float32) / 255
        advance = texts[0].get_window_extent(canvas.get_renderer()).width
        return {c: img[:, k * cell:(k + 1) * cell] for k, c in enumerate(chars)}, max(int(round(advance)), 1)

    # ---------------------------------------------------------------- geometry
    def _project(self, Q, az):
        """Orthographic view of Q (..., 3) at azimuth az (rad): (..., 2), y up, in path units."""
        x = Q[..., 0] * np.cos(az) - Q[..., 1] * np.sin(az)
        depth = Q[..., 0] * np.sin(az) + Q[..., 1] * np.cos(az)
        y = Q[..., 2] * np.cos(self.elev) + depth * np.sin(self.elev)
        return np.stack([x, y], axis=-1)

    def _azimuth(self, t):
        return np.radians(self.rate * t)

    def _pixels(self, Q, t, units=1.0):
        """Pixel (column, row) of points Q (..., 3) in the frame at time t; Q in path units / `units`."""
        xy = self._project(Q, self._azimuth(t)) * (self.scale / units)
        return self.origin[0] + xy[..., 0], self.origin[1] - xy[..., 1]

    def view(self, t):
        """The whole path's pixel positions in the frame at time t: (N, 2) (column, row)."""
        return np.stack(self._pixels(self.P, t), -1)

    def marker_pixel(self, t):
        """Pixel (column, row) of the current point's centre in the frame at time t."""
        col, row = self._pixels(self.timeline.position(t), t)
        return float(col), float(row)

    def start_pixel(self, t):
        """Pixel (column, row) of the start of the path in the frame at time t."""
        col, row = self._pixels(self.P[0], t)
        return float(col), float(row)

    # ---------------------------------------------------------------- drawing
    def draw(self, t, out=None):
        """The frame at time t (s): (height, width, 3) uint8, written into `out` if given."""
        frame = out if out is not None else np.empty((self.size[1], self.size[0], 3), np.uint8)
        frame[:] = self.background
        if self.strip is not None:
            self._paste_strip(frame, t)
        if self.frames is not None:
            self._paste_frame(frame, t)
        self._draw_path(frame, t)
        col, row = self.start_pixel(t)
        self._stamp(frame, [col], [row], self.start_radius, START_RGB)
        self._draw_tail(frame, t)
        col, row = self.marker_pixel(t)
        self._stamp(frame, [col], [row], self.point_radius, MARKER_RGB)
        self._draw_clock(frame, t)
        return frame

    def _paste_strip(self, frame, t):
        r0, r1, c0, c1 = self.strip
        j = int(np.floor((t - SPEC_SPAN - self.strip_start) * self.strip_rate + 0.5))
        j = min(max(j, 0), self.strip_image.shape[1] - (c1 - c0))
        frame[r0:r1, c0:c1] = self.strip_image[:, j:j + c1 - c0]
        mid = (c0 + c1) // 2
        frame[r0:r1, mid - 1:mid + 1] = 255                            # the cursor: now

    def shown_frame(self, t):
        """Index of the source frame shown at time t (the last with time <= t), or -1 before the first."""
        return int(np.searchsorted(self.frames[1], t, side="right")) - 1

    def _paste_frame(self, frame, t):
        k = self.shown_frame(t)
        if k != self._shown[0]:
            if k < 0:
                block = np.zeros((len(self.frame_rows), len(self.frame_cols), 3), np.uint8)
            else:
                img = np.asarray(self.frames[0][k])[self.frame_rows][:, self.frame_cols]
                block = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
            self._shown = (k, block)
        r0, r1, c0, c1 = self.frame_box
        frame[r0:r1, c0:c1] = self._shown[1]

    def _draw_path(self, frame, t):
        """The faint path: the merged samples projected, splatted bilinearly (anti-aliased) and
        composited with opacity PATH_ALPHA * L / (L + PATH_HALF), L the path length (px) in the pixel."""
        r0, r1, c0, c1 = self.view_box
        pos, m, wd = self.sample_pos, len(self.sample_pos), self.size[0]
        az = self._azimuth(t)
        ca, sa, ce, se = np.cos(az), np.sin(az), np.cos(self.elev), np.sin(self.elev)
        # columns of A: screen column, screen row (down) and nearness to the camera, from (x, y, z) in px
        A = np.array([[ca, -sa * se, -sa * ce], [-sa, -ca * se, -ca * ce], [0.0, -ce, se]], np.float32)
        screen = pos @ A
        x = np.clip(screen[:, 0] + np.float32(self.origin[0]), c0, c1 - 1.001)
        y = np.clip(screen[:, 1] + np.float32(self.origin[1] - r0), 0, r1 - r0 - 1.001)
        xi, yi = x.astype(np.intp), y.astype(np.intp)
        fx, fy = x - xi, y - yi
        x0, y0 = int(xi.min()), int(yi.min())                   # the path's box in this frame: the splat's extent
        bw, bh = int(xi.max()) - x0 + 2, int(yi.max()) - y0 + 2
        xi -= x0
        yi -= y0
        w = self.sample_weight * (0.55 + 0.45 * (screen[:, 2] * self.near_scale + 0.5))   # nearer: brighter
        wx1 = w * fx
        wx0 = w - wx1
        idx, ww, tw = self._splat_idx, self._splat_w, self._splat_tw
        base = idx[:m]
        np.multiply(yi, bw, out=base)
        base += xi
        np.add(base, 1, out=idx[m:2 * m])
        np.add(base, bw, out=idx[2 * m:3 * m])
        np.add(base, bw + 1, out=idx[3 * m:])
        np.multiply(wx0, 1 - fy, out=ww[:m])
        np.multiply(wx1, 1 - fy, out=ww[m:2 * m])
        np.multiply(wx0, fy, out=ww[2 * m:3 * m])
        np.multiply(wx1, fy, out=ww[3 * m:])
        np.multiply(ww, self._splat_shade, out=tw)
        density = np.bincount(idx, ww, minlength=bh * bw)
        where = np.flatnonzero(density > 1e-3)
        L = density[where]
        tone = np.bincount(idx, tw, minlength=bh * bw)[where] / L
        level = (L * (ALPHA_LEVELS - 1) / (L + PATH_HALF) + 0.5).astype(np.intp)   # opacity / PATH_ALPHA, quantised
        region = frame[r0:r1].reshape(-1, 3)                         # contiguous: a view, not a copy
        where = (where // bw + y0) * wd + where % bw + x0            # box index -> index in the view's rows
        # the view's background is black, so the composite is the premultiplied colour itself
        region[where] = self.path_colours[tone.astype(np.intp).clip(0, 255) * ALPHA_LEVELS + level]

    def _draw_tail(self, frame, t):
        """The last tail_seconds of the path up to now, thick, fading in from its old end."""
        if self.tail_seconds <= 0:
            return
        tl = self.timeline
        u_now = float(tl.index(t))
        u_old = float(tl.index(t - self.tail_seconds))
        if u_now - u_old <= 0:
            return
        inner = np.arange(np.floor(u_old) + 1, np.ceil(u_now))
        u = np.concatenate([[u_old], inner, [u_now]])
        i = np.minimum(np.floor(u).astype(int), max(len(tl.P) - 2, 0))
        f = (u - i)[:, None]
        Q = tl.P[i] * (1 - f) + tl.P[np.minimum(i + 1, len(tl.P) - 1)] * f
        col, row = self._pixels(Q, t)
        seg = np.hypot(np.diff(col), np.diff(row))
        n = np.maximum(np.ceil(seg).astype(int), 1)                # 1 px apart
        which = np.repeat(np.arange(len(seg)), n)
        frac = (np.arange(n.sum()) - (np.cumsum(n) - n)[which]) / n[which]
        cs = np.append(col[which] + np.diff(col)[which] * frac, col[-1])
        rs = np.append(row[which] + np.diff(row)[which] * frac, row[-1])
        along = np.append(u[which] + np.diff(u)[which] * frac, u[-1])
        fade = 0.15 + 0.85 * (along - u_old) / (u_now - u_old)
        self._stamp(frame, cs, rs, self.tail_radius, TAIL_RGB, fade)

    def _stamp(self, frame, cols, rows, radius, rgb, opacity=None):
        """Discs of `radius` px at (cols, rows), anti-aliased, in colour rgb: their union
        (the most opaque disc at each pixel) blended over the frame."""
        cols, rows = np.asarray(cols, float), np.asarray(rows, float)
        if len(cols) == 1:
            rs, cs, cover = _disc(frame.shape[0], frame.shape[1], cols[0], rows[0], radius)
            if cover.size:
                _blend(frame[rs, cs], rgb, cover * (1.0 if opacity is None else float(opacity[0])))
            return
        h, w = frame.shape[:2]
        k = int(np.ceil(radius)) + 1
        offs = np.arange(-k, k + 1)
        pr = np.floor(rows)[:, None, None] + offs[None, :, None]
        pc = np.floor(cols)[:, None, None] + offs[None, None, :]
        cover = np.clip(radius + 0.5 - np.hypot(pr - rows[:, None, None], pc - cols[:, None, None]), 0, 1)
        if opacity is not None:
            cover = cover * np.asarray(opacity)[:, None, None]
        pr, pc = np.broadcast_arrays(pr, pc)
        keep = (cover > 0) & (pr >= 0) & (pr < h) & (pc >= 0) & (pc < w)
        if not keep.any():
            return
        r, c, a = pr[keep].astype(int), pc[keep].astype(int), cover[keep]
        rlo, clo = r.min(), c.min()
        box = np.zeros((r.max() - rlo + 1, c.max() - clo + 1), np.float32)
        np.maximum.at(box, (r - rlo, c - clo), a)
        region = frame[rlo:rlo + box.shape[0], clo:clo + box.shape[1]]
        _blend(region, rgb, box)

    def _draw_clock(self, frame, t):
        tenths = int(np.floor(max(float(t), 0.0) * 10 + 0.5))
        text = f"{tenths // 600}:{tenths % 600 // 10:02d}.{tenths % 10}"      # 0:59.96 is 1:00.0, not 0:60.0
        x = int(round(0.01 * self.size[0]))
        top = max(int(round(0.035 * self.size[1])) - self.glyphs["0"].shape[0] // 2, 0)
        for k, ch in enumerate(text):
            mask = self.glyphs[ch]
            c0 = x + k * self.glyph_advance
            region = frame[top:top + mask.shape[0], c0:c0 + mask.shape[1]]
            if region.size:
                m = mask[:region.shape[0], :region.shape[1]]
                np.maximum(region, (m[..., None] * 255).astype(np.uint8), out=region)


_worker = {}


def _one_line(e):
    return " ".join(f"{type(e).__name__}: {e}".split())


def finish_encoder(proc, audio_path):
    """Close ffmpeg's input and wait for it; a failure is one line with ffmpeg's last word."""
    try:
        proc.stdin.close()
    except BrokenPipeError:
        pass
    err = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise ffmpeg.failure("write the video", err, f"; check the song's audio {audio_path} and the video settings")


def _quiet_worker():
    """Signals in a worker: Ctrl-C (SIGINT, which a terminal sends to the whole process group)
    is ignored, as the parent handles it and ends the workers; a write to a closed pipe ends the
    worker at once and silently (SIGPIPE, as it ends any Unix program), not with a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def _work(conn, inherited, make, kwargs):
    """A frame worker's life: build the renderer, then for each (slot, t) received draw the frame at
    t into slot `slot` of the shared buffer (inherited at fork) and send the slot back.

    A failure to start, or to draw, is sent instead of a slot (and ends the worker). The worker ends
    quietly when its pipe closes: None received, end of file (the parent gone), or a broken pipe.
    `inherited` : the parent's ends of this worker's pipe and the earlier workers' (copied by the
    fork), closed here so that a worker sees its pipe end when the parent goes."""
    _quiet_worker()
    for c in inherited:
        c.close()
    try:
        try:
            renderer = make(**kwargs)
        except Exception as e:  # any failure: one line, by the parent
            conn.send(UserError(f"the frame renderer could not start ({_one_line(e)}); check WIDTH, HEIGHT "
                                "and the other video settings (see --help)"))
            return
        while (job := conn.recv()) is not None:
            slot, t = job
            try:
                renderer.draw(t, out=_worker["slots"][slot])
            except Exception as e:  # a bug: raised again by the parent, as it is
                conn.send(_sendable(e))
                return
            conn.send(slot)
    except (EOFError, ConnectionError):
        return


def _sendable(e):
    """`e`, or a RuntimeError saying what it was when it cannot be pickled."""
    import pickle
    try:
        pickle.dumps(e)
        return e
    except Exception:
        return RuntimeError(_one_line(e))


class _Workers:
    """`n` processes drawing frames into the shared slots: frame k is drawn by worker k % n, and
    the frames are collected in order.

    Each worker has a pipe of its own (no lock is shared between workers, so one that ends cannot
    block another). Leaving the `with` block ends them: at once (SIGTERM) on an error or Ctrl-C,
    after their last frame otherwise."""

    def __init__(self, n, make, kwargs):
        ctx = mp.get_context("fork")
        self.conns, self.procs = [], []
        # what this process holds (TensorFlow's objects too, when a stage trained in it before) is
        # moved out of the collector's reach before the fork: a worker never collects the parent's
        # objects (collecting a forked copy of TensorFlow's can crash it), only its own
        gc.collect()
        gc.freeze()
        try:
            for _ in range(n):
                ours, theirs = ctx.Pipe()
                proc = ctx.Process(target=_work, args=(theirs, [*self.conns, ours], make, kwargs), daemon=True)
                proc.start()
                theirs.close()
                self.conns.append(ours)
                self.procs.append(proc)
        except BaseException:                 # Ctrl-C while starting them: none is left behind
            self.close(failed=True)
            raise
        finally:
            gc.unfreeze()

    def submit(self, k, slot, t):
        """Ask for frame k (at t s) in slot `slot`."""
        try:
            self.conns[k % len(self.conns)].send((slot, float(t)))
        except ConnectionError:               # that worker has ended: `result` says why
            pass

    def result(self, k):
        """The slot holding frame k, once drawn (frames must be collected in the order submitted)."""
        w = k % len(self.conns)
        try:
            reply = self.conns[w].recv()
        except EOFError:
            self.procs[w].join(1)
            raise UserError(f"a frame worker stopped unexpectedly (exit code {self.procs[w].exitcode}); "
                            "run the same command again") from None
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def __enter__(self):
        return self

    def __exit__(self, kind, *_):
        self.close(failed=kind is not None)
        return False

    def close(self, failed):
        """End the workers: after the frames asked for, or at once when `failed`."""
        for conn in self.conns:
            if not failed:
                try:
                    conn.send(None)
                except ConnectionError:       # that worker has ended already
                    pass
            conn.close()
        for proc in self.procs:
            if failed:
                proc.terminate()
            proc.join()


def frame_times(duration, fps):
    """Times of the frames of a video exactly `duration` s long: round(duration * fps) frames."""
    n = int(round(duration * fps))
    if n < 1:
        raise UserError(f"a {duration:.3f} s song gives no frame at {fps} fps; use a longer song or a higher FPS")
    return np.arange(n) / fps


def render(out_path, audio_path, renderer_kwargs, duration, fps=30, workers=None, progress=True,
           crf=23, preset=PRESET, renderer=None, x264_params=X264_PARAMS):
    """Render the video to `out_path` (H.264 yuv420p + AAC, MP4), atomically.

    audio_path : the song's audio, muxed in; it must exist (None: a silent video,
    for a video source without a sound track). renderer_kwargs :
    the arguments of `Renderer` (width and height in pixels, even, at least
    MIN_SIDE); `renderer` : the class to build from them (default Renderer).
    duration : seconds; fps : frames per second; crf, preset, x264_params :
    libx264's quality, speed preset and extra options. Frames are drawn by `workers`
    processes (default: one per CPU core) into a shared ring of frame buffers
    and written to ffmpeg in order. Returns the number of frames. Bad
    settings, a missing audio file or a renderer that cannot start end with a
    UserError; `out_path` is then left as it was. So does Ctrl-C (KeyboardInterrupt, raised here
    only): the workers ignore it and end quietly, ffmpeg is stopped, the temporary file removed.
    """
    make = renderer or Renderer
    times = frame_times(duration, fps)
    width, height = renderer_kwargs.get("width", 1280), renderer_kwargs.get("height", 720)
    if width < MIN_SIDE or height < MIN_SIDE:
        raise SettingError([("width", f"={width}"), ("height", f"={height} must both be at least {MIN_SIDE} pixels")])
    if width % 2 or height % 2:
        raise SettingError([("width", f"={width}"), ("height", f"={height} must both be even for H.264 yuv420p")])
    if audio_path is not None and not Path(audio_path).is_file():
        raise UserError(f"the song's audio {audio_path} is missing; put it back, or run `python save_dataset.py "
                        "--song <file>` and the later stages again with the audio where it is now")
    workers = workers or mp.cpu_count()
    n_slots = 2 * workers + 2
    frame_bytes = width * height * 3
    buffer = mmap.mmap(-1, n_slots * frame_bytes)            # anonymous, shared with the forked workers
    _worker["slots"] = np.frombuffer(buffer, np.uint8).reshape(n_slots, height, width, 3)
    view = memoryview(buffer)
    with store.atomic_path(out_path) as tmp:
        cmd = ffmpeg.command(
            "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
            *(["-i", str(audio_path), "-map", "0:v:0", "-map", "1:a:0"] if audio_path is not None else []),
            "-c:v", "libx264", "-preset", preset, *(["-x264-params", x264_params] if x264_params else []),
            "-crf", str(crf), "-pix_fmt", "yuv420p",
            *(["-c:a", "aac", "-b:a", "192k"] if audio_path is not None else []),
            "-movflags", "+faststart", "-f", "mp4", str(tmp))
        bar = _progress(len(times), progress)
        try:
            with _Workers(workers, make, renderer_kwargs) as pool:   # before ffmpeg: they hold none of its pipes
                _encode(cmd, pool, times, n_slots, view, frame_bytes, bar, audio_path)
        finally:
            bar.close()
            _worker.pop("slots", None)
            view.release()
            buffer.close()
    return len(times)


def _encode(cmd, pool, times, n_slots, view, frame_bytes, bar, audio_path):
    """Run ffmpeg (`cmd`, reading raw frames on its input) and feed it the frames at `times`, drawn by
    `pool` into the ring of `n_slots` slots of `view`, in order; ffmpeg is stopped if anything fails.

    ffmpeg runs in its own session, so Ctrl-C reaches this process and not ffmpeg: the interrupt is
    then reported as one (KeyboardInterrupt), not as ffmpeg failing."""
    proc = ffmpeg.writer(cmd)
    try:
        pending = deque()
        for k, t in enumerate(times):
            if len(pending) == n_slots and not _write(proc, view, pool.result(pending.popleft()), frame_bytes, bar):
                break
            pool.submit(k, k % n_slots, t)
            pending.append(k)
        else:
            while pending and _write(proc, view, pool.result(pending.popleft()), frame_bytes, bar):
                pass
        finish_encoder(proc, audio_path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _write(proc, view, slot, frame_bytes, bar):
    """Send frame buffer `slot` to ffmpeg; False when ffmpeg has stopped (it says why when it exits)."""
    try:
        proc.stdin.write(view[slot * frame_bytes:(slot + 1) * frame_bytes])
    except BrokenPipeError:
        return False
    bar.update(1)
    return True


def _progress(total, enabled):
    from tqdm import tqdm
    return tqdm(total=total, unit="frame", disable=not enabled, desc="rendering")
