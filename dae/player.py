"""The player page: hear the song and watch its path move in the browser, no rendering.

One HTML page per run (``outputs/<song>/<run>/player.html``) with, beside it,
the song's audio compressed to AAC in an M4A file (``player.m4a``), and one
copy of plotly.js for the whole output folder (``outputs/plotly.min.js``, taken
from the installed plotly package by `dae.plotting.install_library`),
referenced relatively: the folder works offline, nothing is fetched at view
time.

What is shown when: at once, a flat view (the path drawn on a 2-D canvas with
the camera that the 3-D view starts with) and the music; plotly.js is loaded
once the music plays, and when its 3-D scene (free rotation and zoom, axes) has
drawn, it replaces the flat view, in the same place on screen. In both views the
point and a short tail are painted by a worker (an OffscreenCanvas, so they move
on while plotly.js holds the page's thread; the page paints them where a browser
has no such worker) on a transparent canvas above the path, moved
by the video's sync rule (`dae.video.Timeline`: the window whose centre is at t,
linearly interpolated; before the first centre and after the last the point
rests at the ends) and projected with the view's camera as it is now (plotly's
own matrices in the 3-D view), so plotly never redraws while the music plays
and the camera stays where it is put. A spectrogram strip of +-5 s scrolls under
a cursor at "now"; play / pause, a scrub bar, clicking the strip or a point of
the path (3-D view) seeks. A video run's page shows, instead of the strip, the
video's frame at t (the frame with the largest time <= t, as in its MP4), from
JPEG sheets in a folder beside the page, and plays the video's own sound (or a
silent track, its clock, when it has none).

For tests and scripts the page exposes ``window.player``: ``seek(t)``,
``play()``, ``pause()``, ``time()``, ``position()`` (the [x, y, z] of the point
drawn now), ``screen()`` (where it was drawn, in page pixels), ``frame()`` (a video's
frame at now, wanted and drawn), ``view()``
("flat" or "3d"), ``tail()``, ``camera()``, ``marks()`` (performance marks from
the start of navigation). Opening ``player.html#autoplay&muted`` starts it muted
at once (``&t=12``: at 12 s; ``&flat``: the flat view only, plotly.js not loaded;
``&noworker``: the page paints the point itself).
"""
import base64
import html
import json
import os
import shutil
from pathlib import Path

import numpy as np

from dae import ffmpeg, plotting, provenance, store
from dae.errors import UserError, refused
from dae.video import Timeline

TEMPLATE = Path(__file__).with_name("player.html")
PAGE_NAME = "player.html"
AUDIO_NAME = "player.m4a"
FRAMES_PREFIX = "player-frames-"   # + a digest of the frames: the folder of a video run's frame sheets
SHEET_SIDE = 8                     # a sheet holds SHEET_SIDE x SHEET_SIDE frames
TILE_COLUMNS = 2048      # spectrogram columns per image tile (well inside every browser's image limits)
JPEG_QUALITY = 85
COLOURS = 24             # the viridis scale in this many steps: the flat view's pieces and the colour bar
SIMPLIFY = 0.002          # plotly's line keeps within this of every point (box units; about a pixel at first)
CAMERA = {"eye": {"x": 1.25, "y": 1.25, "z": 1.25}, "center": {"x": 0, "y": 0, "z": 0},
          "up": {"x": 0, "y": 0, "z": 1}}       # plotly's default, set explicitly: both views start here
SYNC = "the point shown at time t is the path at the window centred on t (dae.video.Timeline)"


def encode_audio(source, dest, kbps=128):
    """Compress the song's audio to AAC (M4A, moov first, so a browser can start before the end)
    at `kbps` kbit/s, atomically. A missing source or an ffmpeg failure is a UserError."""
    source = Path(source)
    if not source.is_file():
        raise UserError(f"the song's audio {source} is missing; put it back, or run `python save_dataset.py "
                        "--song <file>` and the later stages again with the audio where it is now")
    if not 16 <= int(kbps) <= 512:
        raise refused("audio_kbps", f"={kbps} must be between 16 and 512 kbit/s")
    with store.atomic_path(dest) as tmp:
        ffmpeg.run(ffmpeg.command("-y", "-i", str(source), "-map", "0:a:0", "-vn", "-c:a", "aac", "-b:a",
                                  f"{int(kbps)}k", "-movflags", "+faststart", "-f", "mp4", str(tmp)),
                   f"compress the audio {source}", "; check the file")


def silent_audio(duration, dest, kbps=16):
    """A silent AAC track of `duration` seconds (M4A) at `dest`, atomically: the clock of the page of a
    video with no sound (the page plays, seeks and keeps time through its audio element)."""
    if not duration > 0:
        raise UserError(f"a silent track needs a positive duration, not {duration} s")
    with store.atomic_path(dest) as tmp:
        ffmpeg.run(ffmpeg.command("-y", "-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono", "-t", f"{float(duration):.6f}",
                                  "-c:a", "aac", "-b:a", f"{int(kbps)}k", "-movflags", "+faststart", "-f", "mp4",
                                  str(tmp)),
                   "make a silent track for the page")


def frame_sheets(images, side=SHEET_SIDE, quality=JPEG_QUALITY):
    """A video's frames as JPEG sheets for the page: sheet s holds frames s*side^2 .. (s+1)*side^2 - 1,
    row by row (frame j of a sheet at column j % side, row j // side).

    images : (N, h, w) uint8 gray frames (as stage 1 stored them, the pictures the model saw).
    Returns (list of JPEG bytes, facts: h, w, side).
    """
    import io

    from PIL import Image
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise UserError(f"frames for the page must be (N, h, w) uint8 with N >= 1, not {images.dtype} "
                        f"{images.shape}; rerun `python save_dataset.py --source video`")
    n, h, w = images.shape
    per = side * side
    sheets = []
    for s in range(0, n, per):
        block = images[s:s + per]
        rows = -(-len(block) // side)
        sheet = np.zeros((rows * h, side * w), np.uint8)
        for j, im in enumerate(block):
            sheet[(j // side) * h:(j // side + 1) * h, (j % side) * w:(j % side + 1) * w] = im
        buf = io.BytesIO()
        Image.fromarray(sheet, "L").save(buf, "JPEG", quality=quality)
        sheets.append(buf.getvalue())
    return sheets, {"h": int(h), "w": int(w), "side": int(side)}


def write_sheets(folder, images):
    """Write the frame sheets into `folder`/player-frames-<digest>/ (named by the frames and the sheet
    settings, so a page always points at sheets made from its frames), atomically as a folder: it is
    either absent or complete. Returns (folder name, facts, bytes)."""
    import hashlib
    images = np.ascontiguousarray(images)
    digest = hashlib.sha256(np.asarray(images.shape).tobytes() + images.tobytes()
                            + f"{SHEET_SIDE},{JPEG_QUALITY}".encode()).hexdigest()[:16]
    name = FRAMES_PREFIX + digest
    sheets, facts = frame_sheets(images)
    facts["sheets"] = len(sheets)
    dest = Path(folder) / name
    store.check_folder(dest)                         # a file there is said, not replaced
    if not dest.is_dir():
        tmp = store.temporary_name(dest)
        shutil.rmtree(tmp, ignore_errors=True)       # a crashed process of our pid left it: not ours to keep
        store.make_folder(tmp)
        try:
            for k, data in enumerate(sheets):
                (tmp / f"{k:05d}.jpg").write_bytes(data)
            os.replace(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return name, facts, sum(len(b) for b in sheets)


def spectrogram_tiles(F, T, S, tile_columns=TILE_COLUMNS, quality=JPEG_QUALITY):
    """The spectrogram coloured as in the video (inferno, dB from the loudest bin, floor -80 dB),
    high frequencies on top, cut into JPEG tiles of `tile_columns` columns: (data URIs, facts)."""
    import io

    import matplotlib
    from PIL import Image
    S = np.asarray(S, dtype=np.float64)
    db = 20 * np.log10(np.maximum(S, 1e-12) / max(float(S.max()), 1e-12))
    norm = matplotlib.colors.Normalize(vmin=max(float(db.min()), -80.0), vmax=0.0)
    rgb = (matplotlib.colormaps["inferno"](norm(db[::-1]))[..., :3] * 255).astype(np.uint8)
    tiles = []
    for c in range(0, rgb.shape[1], tile_columns):
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(rgb[:, c:c + tile_columns])).save(buf, "JPEG", quality=quality)
        tiles.append("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"))
    hop = float(T[1] - T[0]) if len(T) > 1 else 1.0
    return tiles, {"tile_cols": int(tile_columns), "hop": hop, "t_first": float(T[0]) - hop / 2,
                   "f_lo": float(F[0]), "f_hi": float(F[-1]), "n_cols": int(S.shape[1])}


def segment_colours(k):
    """k colours of the viridis scale, one per piece of the path (earliest first)."""
    import matplotlib
    rgb = matplotlib.colormaps["viridis"]((np.arange(k) + 0.5) / k)[:, :3]
    return ["#%02x%02x%02x" % tuple(int(round(255 * c)) for c in row) for row in rgb]


def aspect_ratio(lo, hi):
    """The 3-D box's proportions: the axis ranges' widths, scaled to a product of 1 (a unit is as
    long on every axis, as with plotly's aspectmode "data"), set explicitly so that the flat view
    can use them before plotly loads."""
    w = np.asarray(hi, dtype=np.float64) - np.asarray(lo, dtype=np.float64)
    return [float(v) for v in w / np.cbrt(np.prod(w))]


def page(P, t_center, duration, audio_src, library_src, spec=None, title="", note="", labels=None, tail=12,
         frames=None, sections=None):
    """The page's HTML text.

    P : (N, 3) path as drawn (N >= 2); t_center : (N,) window centres (s), evenly spaced;
    duration : s; audio_src, library_src : URLs relative to the page; spec : (F, T, S) or None;
    tail : points highlighted behind the current one; frames : a video run's frame sheets,
    (folder URL relative to the page, facts of `frame_sheets` with "sheets", (M,) frame times in s),
    shown instead of the spectrogram (at t, the frame with the largest time <= t); sections : (n + 1,)
    increasing section edges (s) from 0 to the end, or None.
    """
    P = np.asarray(P, dtype=np.float64)
    t_center = np.asarray(t_center, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != 3 or len(P) < 2 or not np.all(np.isfinite(P)):
        raise UserError(f"a player page needs a finite path of at least 2 points in 3-D, not shape {P.shape}; "
                        "rerun `python embed_audio.py` with the same settings")
    if t_center.shape != (len(P),):
        raise UserError(f"{len(t_center)} window times for {len(P)} points; rerun `python embed_audio.py`")
    step = Timeline(P, t_center).step                  # the MP4's: the mean step
    off = np.abs(t_center - (t_center[0] + step * np.arange(len(t_center))))
    if not step > 0 or off.max() > 0.05 * step:         # a video's frame times wobble in their 6th digit
        raise UserError("the window centres are not evenly spaced in time (within 5% of a step); "
                        "rerun `python embed_audio.py`")
    lo, hi = P.min(0), P.max(0)
    pad = 0.05 * float((hi - lo).max() or 1.0)
    data = {
        "P": base64.b64encode(P.astype("<f4").tobytes()).decode("ascii"), "n": len(P),
        "t0": float(t_center[0]), "step": step, "duration": float(duration), "tail": int(tail),
        "labels": list(labels or ["x", "y", "z"]), "title": title, "note": note,
        "range": [[float(lo[k] - pad), float(hi[k] + pad)] for k in range(3)],
        "audio": audio_src, "library": library_src, "spec": None, "colors": segment_colours(COLOURS),
        "camera": CAMERA, "aspect": aspect_ratio(lo - pad, hi + pad), "simplify": SIMPLIFY,
        "sections": section_list(sections, duration),
    }
    if spec is not None and frames is None:
        tiles, facts = spectrogram_tiles(*spec)
        data["spec"] = {"tiles": tiles, **facts}
    data["frames"] = None
    if frames is not None:
        where, facts, times = frames
        times = np.asarray(times, dtype=np.float64)
        if times.ndim != 1 or len(times) < 1 or np.any(np.diff(times) <= 0):
            raise UserError("the frame times are not increasing; rerun `python save_dataset.py --source video`")
        data["frames"] = {"dir": where, **facts, "n": len(times),
                          "times": base64.b64encode(times.astype("<f8").tobytes()).decode("ascii")}
    text = TEMPLATE.read_text()
    blob = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    for key, value in (("__TITLE__", html.escape(title)), ("__AUDIO__", html.escape(audio_src, quote=True))):
        text = text.replace(key, value)
    return text.replace("__DATA__", blob)


def write(folder, library, P, t_center, audio_source, duration, spec=None, title="", note="", labels=None,
          tail=12, kbps=128, frames=None, record=None, sections=None):
    """Write `folder`/player.html and its audio `folder`/player.m4a, and make sure one copy of
    plotly.js is at `library` (a path in or above `folder`).

    audio_source : the file whose (first) sound track the page plays, or None for a silent track of
    `duration` s (a video without sound); frames : a video run's (N, h, w) uint8 frames and (N,)
    times (s), shown instead of the spectrogram, as JPEG sheets in a folder beside the page;
    record : None, or record(staged page, facts) writing the page's sidecar on the staged page
    (`provenance.write_sidecar`); sections : the edges (s) of the song's sections, shown as a bar
    of sections under the controls and as marks on the strip (None: no bar). The page, its audio
    and that sidecar are published as one unit
    (`store.group_commit`) after every other file the page uses (plotly.js, the sheets) is
    complete, and older sheets are removed only after, so a crash leaves the old page working or the
    new one, each beside its own audio and sidecar. Returns a dict of facts: the files (relative to
    the page) with their sha256 and sizes in bytes.
    """
    folder = store.make_folder(folder)
    page_path, audio_path = folder / PAGE_NAME, folder / AUDIO_NAME
    library_sha = plotting.install_library(library)
    library_rel = Path(os.path.relpath(Path(library).resolve(), folder.resolve())).as_posix()
    sheets = None
    if frames is not None:
        name, facts, sheet_bytes = write_sheets(folder, frames[0])
        sheets = (name, facts, frames[1])
    with store.group_commit() as group:
        audio, text = group.stage(audio_path), group.stage(page_path)
        if audio_source is None:
            silent_audio(duration, audio)
        else:
            encode_audio(audio_source, audio, kbps)
        store.save_text(text, page(P, t_center, duration, AUDIO_NAME, library_rel, spec, title, note, labels,
                                   tail, sheets, sections))
        out = {
            "page": str(page_path),
            "files": {AUDIO_NAME: provenance.file_hash(audio), library_rel: library_sha},
            "bytes": {"page": text.stat().st_size, "audio": audio.stat().st_size,
                      "library": Path(library).stat().st_size},
            "audio_kbps": int(kbps) if audio_source is not None else 0,
        }
        if sheets is not None:
            out["frames"] = {"folder": sheets[0], "sheets": sheets[1]["sheets"], "frames": len(frames[1])}
            out["bytes"]["frames"] = sheet_bytes
        if record is not None:
            record(text, out)
    remove_sheets(folder, keep=sheets[0] if sheets is not None else None)
    return out


def remove_sheets(folder, keep=None):
    """Remove the frame-sheet folders in `folder` but `keep` (a name): the sheets no page points at any more."""
    for old in Path(folder).glob(FRAMES_PREFIX + "*"):
        if old.is_dir() and old.name != keep:
            shutil.rmtree(old, ignore_errors=True)


def section_list(edges, duration):
    """The page's sections: [start, end] pairs (s) from the edges (n + 1,) (`dae.stages.section_edges`),
    the last one ending at the song's end; [] for None or a single section."""
    if edges is None:
        return []
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0) or not np.all(np.isfinite(edges)):
        raise ValueError(f"sections={edges!r}: expected increasing finite edges from the start to the end")
    ends = [*edges[1:-1], max(float(edges[-1]), float(duration))]
    pairs = [[float(a), float(b)] for a, b in zip(edges[:-1], ends)]
    return pairs if len(pairs) > 1 else []


def page_path(paths):
    return Path(paths.output_dir) / PAGE_NAME


def make(paths, emb, cfg, tail=12, sections=None):
    """The run's player page from a checked embedding `emb` (`dae.embedding.load(..., need_audio=True)`),
    with a sidecar that records what it was made from (the embedding, and the spectrogram and the audio,
    or for a video run the frames and the video's sound). A video run shows its frames (as stage 1
    stored them) instead of the spectrogram, and plays the video's own sound, or a silent track when it
    has none. cfg : the stage's `dae.config.Player` (its audio_kbps, spectrogram, and what the sidecar
    records); tail : points highlighted behind the current one; sections : the edges (s) of the song's
    sections, (n + 1,) from 0 to the end (`dae.stages.section_edges`), or None. The page, its audio and
    its sidecar are published as one unit (`write`). Returns the facts."""
    from dae import sources
    source = sources.of_chain(emb["chain"])
    record, audio, shown = source.shown(emb["chain"], panel=cfg.spectrogram)
    shown = {"spec": shown.get("spec"), **({"frames": shown["frames"]} if "frames" in shown else {})}
    frames = source.record_kind == "frames"
    P, labels, note = plotting.project3(emb["Z"], emb["t_center"])      # the pictures' view, labels and all
    title = f"{paths.song} · {emb['meta']['architecture']} · {source.what(paths, cfg)}"
    sync = SYNC + ("; the frame shown is the source frame with the largest time <= t" if frames else "")

    def record_page(staged, facts):
        provenance.write_sidecar(staged, "player page", cfg.settings(), run=paths.run,
                                 inputs={"embedding": emb["meta"], source.record_kind: record,
                                         "audio": (record["source"], record["source_sha256"])},
                                 duration_s=record["duration_s"], files=facts["files"], bytes=facts["bytes"],
                                 audio_kbps=facts["audio_kbps"], tail=int(tail), projection=note or "none",
                                 sections=[] if sections is None else [float(e) for e in sections],
                                 sync=sync, audio=audio or "none (the video has no sound: a silent track keeps time)",
                                 **({"frames": facts["frames"]} if frames else {}))
    return write(paths.output_dir, plotting.library_path(paths), P, emb["t_center"], audio, record["duration_s"],
                 title=title, note=note, labels=labels, tail=tail, kbps=cfg.audio_kbps, record=record_page,
                 sections=sections, **shown)
