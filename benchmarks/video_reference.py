"""The video renderer as it was before issue 10 (its drawing unchanged), kept as the reference
that benchmarks/bench_video.py measures the current one against (not used by the pipeline);
its sync rule (Timeline) and small helpers are the current module's.

Stage 4: a video of a point moving along the embedded path, with the song's audio.

Sync: the point shown at time t is the path interpolated to the window whose
*centre* is at t (window j covers columns j .. j+width-1, so its centre is at
(j + width/2) * 1024 / sr seconds). Before the first centre and after the last
the point rests at the ends of the path.

Frames are drawn by worker processes, each with one matplotlib figure reused
for every frame (only the data of its artists change), and piped in order to
the ffmpeg that imageio-ffmpeg ships, which muxes in the audio.
"""
import multiprocessing as mp
import subprocess
from pathlib import Path

import numpy as np

from dae.errors import UserError
from dae.video import Timeline, _one_line, _progress, finish_encoder, frame_times  # shared with today's renderer

MARKER_RGB = (255, 0, 0)   # the current point, pure red (the tests find it by colour)
MIN_SIDE = 64              # pixels: the smallest frame the layout (3-D view over a spectrogram) fits in


class Renderer:
    """One figure, reused: draws the frame at time t into an RGB array (H, W, 3)."""

    def __init__(self, P, t_center, spec=None, width=1280, height=720, tail=12, degrees_per_second=6.0,
                 elevation=25.0, title=""):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        centre = (P.max(0) + P.min(0)) / 2
        self.P = (P - centre) / (np.ptp(P, axis=0).max() / 2 or 1.0)     # inside [-1, 1]^3
        self.timeline = Timeline(self.P, t_center)
        self.tail, self.rate, self.elev = tail, degrees_per_second, np.radians(elevation)
        self.size = (width, height)
        dpi = 100
        self.fig = fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="black")
        top = 0.26 if spec is not None else 0.0
        ax = fig.add_axes([0.0, top, 1.0, 1.0 - top])
        reach = 1.3   # the unit cube's diagonal, seen from any azimuth, stays inside
        aspect = width / (height * (1 - top))
        ax.set_xlim(-reach * aspect, reach * aspect)
        ax.set_ylim(-reach, reach)
        ax.set_axis_off()
        self.ax = ax
        self.path_line, = ax.plot([], [], color="0.55", lw=0.6, alpha=0.5)
        self.tail_line, = ax.plot([], [], color="#ffb000", lw=2.5, solid_capstyle="round")
        self.marker, = ax.plot([], [], "o", color=np.array(MARKER_RGB) / 255, markersize=11,
                               markeredgewidth=0, antialiased=False)
        self.clock = ax.text(0.01, 0.97, "", color="white", fontsize=14, family="monospace",
                             transform=ax.transAxes, va="top")
        ax.text(0.99, 0.97, title, color="0.8", fontsize=11, transform=ax.transAxes, va="top", ha="right")
        self.strip = None
        if spec is not None:
            self._setup_strip(fig, spec, top)
        for artist in (self.path_line, self.tail_line, self.marker, self.clock):
            artist.set_animated(True)
        fig.canvas.draw()
        self.background = fig.canvas.copy_from_bbox(fig.bbox)

    def _setup_strip(self, fig, spec, top, span=5.0):
        """The spectrogram panel: static axes (time relative to now), and the
        colour-mapped spectrogram kept as an RGB array to paste, scrolled, into each frame."""
        import matplotlib
        F, T, S, _ = spec
        sax = fig.add_axes([0.05, 0.05, 0.93, top - 0.08], facecolor="black")
        sax.set_xlim(-span, span)
        sax.set_ylim(F[0], F[-1])
        sax.set_xticks(np.arange(-int(span) + 1, int(span)))
        sax.set_xticklabels([f"{k:+d} s" if k else "now" for k in range(-int(span) + 1, int(span))])
        sax.tick_params(colors="0.8", labelsize=9)
        sax.set_ylabel("Hz", color="0.8", fontsize=9)
        db = 20 * np.log10(np.maximum(S, 1e-12) / max(float(S.max()), 1e-12))
        norm = matplotlib.colors.Normalize(vmin=max(float(db.min()), -80.0), vmax=0.0)
        self.colours = (matplotlib.colormaps["inferno"](norm(db))[..., :3] * 255).astype(np.uint8)
        x0, y0, x1, y1 = np.round(sax.get_window_extent().extents).astype(int)
        h = self.size[1]
        self.strip = (h - y1, h - y0, x0, x1)                        # rows, columns of the panel
        n_rows = (h - y0) - (h - y1)
        self.strip_rows = ((1 - (np.arange(n_rows) + 0.5) / n_rows) * len(F)).astype(int).clip(0, len(F) - 1)
        self.strip_offsets = -span + (np.arange(x1 - x0) + 0.5) / (x1 - x0) * 2 * span   # s from now
        self.hop = float(T[1] - T[0]) if len(T) > 1 else 1.0
        self.t_first = float(T[0]) - self.hop / 2

    def _paste_strip(self, frame, t):
        r0, r1, c0, c1 = self.strip
        cols = np.floor((t + self.strip_offsets - self.t_first) / self.hop).astype(int)
        inside = (cols >= 0) & (cols < self.colours.shape[1])
        block = self.colours[self.strip_rows][:, cols.clip(0, self.colours.shape[1] - 1)]
        block[:, ~inside] = 0
        frame[r0:r1, c0:c1] = block
        mid = (c0 + c1) // 2
        frame[r0:r1, mid - 1:mid + 1] = 255                            # the cursor: now

    def view(self, t):
        """Project the normalised path for time t: (N, 2) screen coordinates (orthographic)."""
        return self._project(self.P, t)

    def _project(self, Q, t):
        az = np.radians(self.rate * t)
        x = Q[..., 0] * np.cos(az) - Q[..., 1] * np.sin(az)
        depth = Q[..., 0] * np.sin(az) + Q[..., 1] * np.cos(az)
        y = Q[..., 2] * np.cos(self.elev) + depth * np.sin(self.elev)
        return np.stack([x, y], axis=-1)

    def marker_pixel(self, t):
        """Pixel (column, row) of the current point's centre in the frame at time t."""
        xy = self._project(self.timeline.position(t), t)
        col, row = self.ax.transData.transform(xy)
        return col, self.size[1] - row

    def draw(self, t):
        screen = self.view(t)
        self.path_line.set_data(screen[:, 0], screen[:, 1])
        u = float(self.timeline.index(t))
        lo = max(0, int(np.ceil(u)) - self.tail)
        current = self._project(self.timeline.position(t), t)
        tail = np.vstack([screen[lo:int(np.floor(u)) + 1], current[None]])
        self.tail_line.set_data(tail[:, 0], tail[:, 1])
        self.marker.set_data([current[0]], [current[1]])
        self.clock.set_text(f"{int(t // 60)}:{t % 60:04.1f}")
        canvas = self.fig.canvas
        canvas.restore_region(self.background)
        for artist in (self.path_line, self.tail_line, self.marker, self.clock):
            self.ax.draw_artist(artist)
        frame = np.array(np.asarray(canvas.buffer_rgba())[..., :3])
        if self.strip is not None:
            self._paste_strip(frame, t)
        return frame


_worker = {}


def _init_worker(kwargs):
    """Build the worker's renderer. A failure is kept, not raised: a Pool whose
    initializer raises respawns its workers for ever, so the first frame the
    worker is asked for reports it instead, and the render ends."""
    try:
        _worker["renderer"] = Renderer(**kwargs)
    except Exception as e:  # any failure: reported once, by _render
        _worker["error"] = _one_line(e)


def _render(t):
    if "renderer" not in _worker:
        raise UserError(f"the frame renderer could not start ({_worker.get('error', 'unknown error')}); "
                        "check WIDTH, HEIGHT and the other video settings (see --help)")
    return _worker["renderer"].draw(t).tobytes()


def render(out_path, audio_path, renderer_kwargs, duration, fps=30, workers=None, progress=True,
           crf=23, preset="veryfast"):
    """Render the video to `out_path` (H.264 yuv420p + AAC, MP4), atomically.

    audio_path : the song's audio, muxed in; it must exist. renderer_kwargs :
    the arguments of `Renderer` (width and height in pixels, even, at least
    MIN_SIDE). duration : seconds; fps : frames per second. Returns the
    number of frames. Bad settings, a missing audio file or a renderer that
    cannot start end with a UserError; `out_path` is then left as it was.
    """
    import imageio_ffmpeg
    from dae.store import atomic_path
    times = frame_times(duration, fps)
    width, height = renderer_kwargs.get("width", 1280), renderer_kwargs.get("height", 720)
    if width < MIN_SIDE or height < MIN_SIDE:
        raise UserError(f"WIDTH={width} and HEIGHT={height} must both be at least {MIN_SIDE} pixels")
    if width % 2 or height % 2:
        raise UserError(f"WIDTH={width} and HEIGHT={height} must be even for H.264 yuv420p")
    if not Path(audio_path).is_file():
        raise UserError(f"the song's audio {audio_path} is missing; put it back, or run `python save_dataset.py "
                        "--song <file>` and the later stages again with the audio where it is now")
    workers = workers or mp.cpu_count()
    with atomic_path(out_path) as tmp:
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
               "-i", str(audio_path), "-map", "0:v:0", "-map", "1:a:0",
               "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
               "-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart", "-f", "mp4", str(tmp)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        bar = _progress(len(times), progress)
        try:
            ctx = mp.get_context("fork")
            with ctx.Pool(workers, initializer=_init_worker, initargs=(renderer_kwargs,)) as pool:
                for frame in pool.imap(_render, times, chunksize=4):
                    try:
                        proc.stdin.write(frame)
                    except BrokenPipeError:   # ffmpeg stopped: say why, below
                        break
                    bar.update(1)
            finish_encoder(proc, audio_path)
        finally:
            bar.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return len(times)
