"""Stage 1 for a video: read its frames (grayscale, resized, optionally decimated), save them compactly.

The source is a video file (anything the bundled ffmpeg decodes: MP4/H.264,
WebM, MOV, MKV, ...) or a folder of numbered frame images (PNG, JPEG, ...), as
the original's input was. Both go through the ffmpeg binary of imageio-ffmpeg:
it converts to 8-bit gray and resizes (area averaging) in its filter graph and
streams raw frames into a pipe, read block by block into uint8 arrays. Frames
stay uint8 everywhere (an 18 000-frame video at 150 x 268 is 724 MB); training
scales them to [0, 1] per batch.

Times: frame j of a video file is shown from its presentation time (ffmpeg's
pts_time) until the next frame's; a folder's frames are FOLDER_FPS apart.

Damage is refused, not half-used: a video file that ffmpeg reports errors for,
or that decodes clearly shorter than its container declares, frames of mixed
sizes, and a source with no frames end with one line (a dropped stretch would
shift every later time).
"""
import re
import tempfile
from pathlib import Path

import numpy as np

from dae import audio as audio_io
from dae import ffmpeg, layout, provenance, store
from dae.errors import UserError, refused

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".wmv", ".mpg", ".mpeg", ".ts",
                  ".m2ts", ".mts", ".3gp", ".ogv", ".mj2", ".dv", ".y4m", ".gif")
DEMO = "demo-video"          # SONG name of the bundled video, synthesised on first use
SHORTFALL_S = 0.5            # decoded video may fall this short of the declared duration ...
SHORTFALL_FRACTION = 0.05    # ... or this fraction of it (audio may outlast the pictures a little)
_BLOCK = 256                 # frames read from the pipe at a time

_SHOWINFO = re.compile(r"\bn:\s*(\d+)\s+pts:\s*(\S+)\s+pts_time:(\S+).*?\bs:(\d+)x(\d+)")


def _check_image_sizes(files):
    """Every image has one size; a folder mixing sizes is refused, naming two that differ."""
    from PIL import Image
    first = None
    for f in files:
        try:
            with Image.open(f) as im:
                size = im.size
        except Exception as e:  # PIL raises many types for damaged files
            raise UserError(f"{f} is not a readable image ({type(e).__name__}); replace or remove it") from None
        if first is None:
            first = (f, size)
        elif size != first[1]:
            raise UserError(f"frames of mixed sizes in {f.parent}: {first[0].name} is {first[1][0]}x{first[1][1]} "
                            f"but {f.name} is {size[0]}x{size[1]} pixels; give frames of one size")
    return first[1]


def _concat_list(files, folder_fps):
    lines = ["ffconcat version 1.0"]
    for f in files:
        quoted = str(Path(f).resolve()).replace("'", "'\\''")
        lines += [f"file '{quoted}'", f"duration {1.0 / folder_fps:.9f}"]
    return "\n".join(lines) + "\n"


def read(source, size, step=1, folder_fps=30.0):
    """Decode `source` (video file or frame folder) to gray uint8 frames.

    size : (height, width) or 'HxW'; every frame is resized to it. step : keep
    frames 0, step, 2*step, ... folder_fps : frame rate of a folder's frames.
    Returns (frames (N, height, width) uint8, times (N,) s, facts dict).
    """
    h, w = layout.parse_size(size) if isinstance(size, str) else size
    if step < 1:
        raise refused("frame_step", f"={step} must be at least 1")
    source = Path(source)
    if not source.exists():
        raise UserError(f"video not found: {source}; give a video file or a folder of frames with --song")
    chain = ([rf"select=not(mod(n\,{int(step)}))"] if step > 1 else []) + \
        ["showinfo", f"scale={w}:{h}:flags=area", "format=gray"]
    with tempfile.TemporaryDirectory() as tmp:
        if source.is_dir():
            if not folder_fps > 0:
                raise refused("folder_fps", f"={folder_fps} must be positive")
            files = layout.folder_images(source)
            _check_image_sizes(files)
            listing = Path(tmp) / "frames.ffconcat"
            listing.write_text(_concat_list(files, folder_fps))
            inputs = ["-f", "concat", "-safe", "0", "-i", str(listing)]
        else:
            files = None
            inputs = ["-i", str(source)]
        log_path = Path(tmp) / "ffmpeg.log"
        cmd = ffmpeg.logged_command(*inputs, "-map", "0:V:0", "-an", "-sn", "-dn", "-vf", ",".join(chain),
                                    "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1")
        with open(log_path, "w") as log_file:
            proc = ffmpeg.reader(cmd, log_file)
            blocks, frame_bytes = [], h * w
            try:
                while True:
                    buf = proc.stdout.read(_BLOCK * frame_bytes)
                    if not buf:
                        break
                    whole = len(buf) // frame_bytes * frame_bytes
                    blocks.append(np.frombuffer(buf[:whole], np.uint8).reshape(-1, h, w))
            finally:
                proc.stdout.close()
                code = proc.wait()
        log = log_path.read_text(errors="replace").splitlines()
    frames = np.concatenate(blocks) if blocks else np.zeros((0, h, w), np.uint8)
    del blocks
    return _checked(source, files, frames, log, code, step, folder_fps)


def _checked(source, files, frames, log, code, step, folder_fps):
    """Refuse what ffmpeg could not decode in full; the times and facts of what it did."""
    info = [m.groups() for m in map(_SHOWINFO.search, log) if m and "showinfo" in m.string]
    about = [l for l in log if "showinfo" not in l]
    errors = ffmpeg.errors(about)
    kind = "frame folder" if files is not None else "video"
    if code != 0:
        if any("matches no streams" in l for l in about) or (files is None and not any(": Video:" in l for l in about)
                                                             and any(": Audio:" in l for l in about)):
            raise UserError(f"{source} has no video stream (sound only?); give a video file with pictures, "
                            "or use --source audio for its sound")
        why = (errors or ["unknown format"])[-1]
        raise UserError(f"{source} is not a {kind} ffmpeg can decode ({why}); give a video file "
                        "(MP4, WebM, MOV, ...) or a folder of numbered frame images")
    if len(frames) == 0 or len(info) == 0:
        raise UserError(f"{source} holds no frames; give a video with pictures in it")
    if len(info) != len(frames):
        raise UserError(f"{source}: ffmpeg described {len(info)} frames but delivered {len(frames)}; "
                        "re-encode the video (e.g. to MP4/H.264) and try again")
    sizes = {(int(g[3]), int(g[4])) for g in info}
    if len(sizes) > 1:
        (w0, h0), (w1, h1) = sorted(sizes)[:2]
        raise UserError(f"frames of mixed sizes in {source} ({w0}x{h0} and {w1}x{h1} pixels); "
                        "give frames of one size (re-encode the video at one resolution)")
    src_w, src_h = sizes.pop()
    if files is not None:
        expected = len(range(0, len(files), step))
        if errors or len(frames) != expected:
            said = f" (ffmpeg: {errors[0]})" if errors else ""
            raise UserError(f"{source}: decoded {len(frames)} of its {expected} frames{said}; "
                            "replace the damaged images and try again")
        fps = folder_fps / step
        times = np.arange(len(frames)) / fps
        declared = None
    else:
        try:
            times = np.array([float(g[2]) for g in info])
        except ValueError:   # NOPTS: fall back on the frame rate the stream declares
            rate = _declared_rate(about) or 30.0
            times = np.arange(len(frames)) * step / rate
        times = times - times[0]
        if np.any(np.diff(times) <= 0):
            raise UserError(f"{source} has frames out of order in time; re-encode it and try again")
        span = times[-1] - times[0]
        rate = _declared_rate(about)
        fps = (len(frames) - 1) / span if len(frames) > 1 else (rate or 30.0) / step
        if rate and abs(rate / step - fps) <= 1e-3 * fps:   # constant rate: the declared one, not its rounding
            fps = rate / step
        declared = ffmpeg.declared_duration(about)
        decoded = times[-1] + 1.0 / fps
        short = declared is not None and declared - decoded > max(SHORTFALL_S, SHORTFALL_FRACTION * declared) \
            and len(frames) * step > 1
        if errors or short:
            said = f"; ffmpeg: {errors[0]}" if errors else ""
            of = f" of the {declared:.2f} s it declares" if declared else ""
            raise UserError(f"{source} is damaged: decoded {len(frames)} frames ({decoded:.2f} s){of}{said}; "
                            "a missing stretch would shift every later time, so use the complete file "
                            "or re-encode it")
    facts = {"n_frames": int(len(frames)), "fps": float(fps), "duration_s": float(times[-1] + 1.0 / fps),
             "source_size": [src_h, src_w], "declared_duration_s": declared,
             "has_audio": files is None and any(": Audio:" in l for l in about)}
    return frames, times, facts


def _declared_rate(log):
    for line in log:
        m = re.search(r": Video:.*?(\d+(?:\.\d+)?) fps", line)
        if m:
            return float(m.group(1))
    return None


# ---------------------------------------------------------------- writing videos (demo, tests)

def write_video(path, frames, fps, codec="libx264", crf=18, audio=None):
    """Write gray uint8 frames (N, H, W) as a video file, atomically.

    codec : 'libx264' (MP4/H.264, yuv420p; H and W must be even) or 'ffv1'
    (lossless gray, for .mkv). audio : optional (x (n,) float in [-1, 1], sr),
    muxed in as AAC (libx264) or PCM (ffv1).
    """
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    n, h, w = frames.shape
    with store.atomic_path(path) as tmp, tempfile.TemporaryDirectory() as work:
        cmd = ffmpeg.command("-y", "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-")
        if audio is not None:
            wav = Path(work) / "sound.wav"
            audio_io.write_wav(wav, audio[0], audio[1], "int16")
            cmd += ["-i", str(wav), "-map", "0:v:0", "-map", "1:a:0", "-shortest"]
        if codec == "ffv1":
            cmd += ["-c:v", "ffv1", "-pix_fmt", "gray"] + (["-c:a", "pcm_s16le"] if audio is not None else [])
            cmd += ["-f", "matroska"]
        else:
            cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p"]
            cmd += (["-c:a", "aac"] if audio is not None else []) + ["-movflags", "+faststart", "-f", "mp4"]
        code, stderr = ffmpeg.call(cmd + [str(tmp)], input=frames.tobytes())
        if code != 0:
            raise RuntimeError(f"ffmpeg could not write {path}: {stderr[-300:]}")
    return Path(path)


def write_folder(folder, frames, pattern="frame_{:05d}.png"):
    """Write gray uint8 frames as numbered PNG images (for tests and examples)."""
    from PIL import Image
    folder = store.make_folder(folder)
    for i, f in enumerate(np.asarray(frames, dtype=np.uint8)):
        Image.fromarray(f, mode="L").save(folder / pattern.format(i))
    return folder


# ---------------------------------------------------------------- the dataset

SAVE_HINT = "run `python save_dataset.py --source video` (with the same --song, --frame-size and --frame-step) first"


def find(song, paths):
    """The video file or frame folder for `song`; the demo video is synthesised on first use.

    song : a path (a video file or a folder of frames, used as given) or a
    name, looked up as data/<name>.<ext> for the video suffixes.
    """
    given = Path(str(song))
    if given.is_file() or given.is_dir():
        return given
    if given.suffix.lower() in VIDEO_SUFFIXES:
        raise UserError(f"video not found: {given}; check the path given to --song")
    found = [paths.data / f"{paths.song}{s}" for s in VIDEO_SUFFIXES if (paths.data / f"{paths.song}{s}").is_file()]
    if found:
        return found[0]
    if str(song) == DEMO:
        from dae import synth
        target = paths.data / f"{DEMO}.mp4"
        print(f"synthesising the demo video into {target}")
        write_video(target, synth.demo_video(), synth.VIDEO_FPS)
        return target
    raise UserError(f"no video found for {song!r} (looked for {paths.data / paths.song}.mp4, .webm, .mov, ...); "
                    "pass --song path/to/video.mp4 or path/to/frames_folder")


def make(song, paths, step, folder_fps):
    """Read the video's frames at `paths`' frame size and `step`; save them (uint8) with their record.

    Returns the record's facts.
    """
    from dae.dataset import check_same_song
    source = find(song, paths)
    sha = provenance.source_hash(source)
    check_same_song(paths, source, sha, paths.frames)
    size = layout.parse_size(paths.frames_tag.split("_")[0])
    frames, times, facts = read(source, size, step, folder_fps)
    if int(frames.max()) == int(frames.min()):
        raise UserError(f"{source} shows one flat gray level in every frame; give a video with something in it")
    meta = {"source": str(source), "source_sha256": sha, "frame_size": list(size), "frame_step": int(step),
            "folder_fps": float(folder_fps) if source.is_dir() else None, "points_per_second": facts["fps"],
            **facts}
    with store.group_commit() as group:          # the frames and their record as one unit
        target = group.stage(paths.frames)
        store.save_npz(target, frames=frames, times=times)
        provenance.write_sidecar(target, "frames", {"song": paths.song, "frame_size": list(size),
                                 "frame_step": int(step)}, inputs={"video": (source, sha)}, **meta)
    return meta


def load(paths, need_source=False):
    """A saved frames dataset, checked against its record and its source: (frames, times, meta).

    frames (N, H, W) uint8, times (N,) s. The checked bytes are let go once read
    (a long video's archive is as large as its frames).
    """
    meta = provenance.check(paths, "frames", need_audio=need_source)["frames"]
    frames, times = arrays(meta)
    return frames, times, meta


def arrays(meta):
    """(frames, times) of a checked frames record; its checked bytes are dropped after reading."""
    d = provenance.arrays(meta, ("frames", "times"))
    meta.pop("blob", None)
    frames, times = d["frames"], d["times"]
    h, w = meta["frame_size"]
    if frames.dtype != np.uint8 or frames.shape != (meta["n_frames"], h, w) or times.shape != (len(frames),):
        raise UserError(f"{meta['path']} holds arrays that do not fit its record; rerun {provenance.rerun('frames')}")
    return frames, times


def contact_sheet(path, frames, times, title, n=8):
    """A picture of `n` frames evenly spread over the video, each with its time."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pick = np.unique(np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int))
    cols = 4
    rows = int(np.ceil(len(pick) / cols))
    h, w = frames.shape[1:]
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows * h / w + 0.5), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, j in zip(axes.ravel(), pick):
        ax.imshow(frames[j], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"frame {j}, {times[j]:.2f} s", fontsize=9)
    from dae.fonts import put_text
    put_text(fig.suptitle, title)                                # a song's name: drawable
    with store.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)

VIDEO_SCALE = (0.0, 255.0)   # 8-bit gray levels -> [0, 1]: x / 255 (the model does it per gathered batch)


def frame_at(times, t):
    """Index of the frame shown at time t (s): the one with the largest time <= t (the first before it).

    times : (N,) increasing frame times; t : scalar or array. The sync rule of
    a video shown beside its path.
    """
    times = np.asarray(times, dtype=np.float64)
    return np.clip(np.searchsorted(times, np.asarray(t, dtype=np.float64), side="right") - 1, 0, len(times) - 1)
