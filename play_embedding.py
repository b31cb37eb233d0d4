"""Stage 4: an MP4 of a point moving along the embedded path, with the song's own audio in sync,
and a player page that does the same live in the browser (no rendering).

The point shown at time t is the one whose window is centred on t; the whole
path is drawn faint (thin, coloured by time), the last TAIL_SECONDS of it
highlighted, the camera turns slowly, and a spectrogram panel with a cursor
shows what is playing. The player page
(outputs/<song>/<run>/player.html + player.m4a, with one outputs/plotly.min.js)
plays the song and moves the point by the same rule, with free rotation.
A video run (--source video) shows, in both, the video's own frames beside the
path instead of the spectrogram (at t, the source frame with the largest time
<= t) and plays its own sound track when it has one (the page: a silent track
keeps time when it has none).
"""
import settings
from dae import cli, dataset, layout, player, plotting, provenance, store, video
from dae import frames as video_frames
from dae.embedding import load as load_embedding
from dae.errors import UserError

FPS = 30                  # frames per second (positions are interpolated between the 43 points/s)
WIDTH, HEIGHT = 1280, 720 # pixels
TAIL_SECONDS = 1.0        # seconds of path highlighted behind the current point (video and player page)
DEGREES_PER_SECOND = 6.0  # camera rotation speed
SPECTROGRAM = True        # show the spectrogram with a cursor under the 3-D view
WORKERS = 0               # processes drawing frames; 0 = one per CPU core
PROGRESS = True           # show a progress bar
FORMAT = "both"           # "mp4" (the video), "html" (the player page, no rendering) or "both"
AUDIO_KBPS = 128          # the player page's audio: AAC in player.m4a at this bitrate (kbit/s)

FORMATS = ("mp4", "html", "both")


def main():
    cfg = cli.configure(layout.select_run(globals(), settings),
                        limits={"AUDIO_KBPS": (16, 512), "TAIL_SECONDS": (0.0, 600.0)})
    if cfg["FORMAT"] not in FORMATS:
        raise UserError(f"FORMAT={cfg['FORMAT']!r} is not one of {', '.join(FORMATS)}")
    paths = layout.run_paths(cfg)
    with store.writing(paths, "play_embedding.py"):
        store.check_folder(paths.output_dir)             # whatever is in its way is said before the work
        # the embedding, the spectrogram and the audio must be one chain: the audio that is muxed in
        # is the one the spectrogram (shown) was made from, and the path was embedded from that spectrogram
        emb = load_embedding(paths, need_audio=True)
        step = float(emb["t_center"][1] - emb["t_center"][0]) if len(emb["t_center"]) > 1 else 1.0
        tail_points = int(round(TAIL_SECONDS / step))            # the player page counts its tail in points
        if cfg["FORMAT"] in ("html", "both"):
            facts = player.make(paths, emb, cfg, tail=tail_points, kbps=AUDIO_KBPS, spectrogram=SPECTROGRAM)
            size = sum(facts["bytes"].values()) / 1e6
            print(f"saved {facts['page']} (page, audio and {plotting.LIBRARY_NAME}: {size:.1f} MB; "
                  "open it in a browser)")
            if cfg["FORMAT"] == "html":
                return
        n, record, audio = save_video(paths, emb, cfg)
    print(f"saved {paths.video} ({n} frames at {FPS} fps, {record['duration_s']:.2f} s"
          f"{' with audio' if audio else ', silent: the video has no sound track'})")


def save_video(paths, emb, cfg):
    """Render the MP4 of a checked embedding `emb` (`dae.embedding.load(..., need_audio=True)`) and publish
    it with its sidecar as one unit (`store.group_commit`): a crash leaves the previous video beside
    its own record, or this one. Returns (frames, the spectrogram's or the frames' record, the audio
    muxed in or None)."""
    source = emb["chain"].get("frames")
    P, _, note = plotting.project3(emb["Z"], emb["t_center"])     # the pictures' view: a 1-D path against time
    if source is None:
        spec = emb["chain"]["spectrogram"]
        F, T, S = dataset.arrays(spec)
        panels = dict(spec=(F, T, S, spec["duration_s"]) if SPECTROGRAM else None)
        record, what, audio = spec, f"{cfg['WINDOW_SECONDS']:g} s window", spec["source"]
    else:
        images, times = video_frames.arrays(source)
        panels = dict(frames=(images, times))              # at t: the source frame with the largest time <= t
        record, what = source, f"video, {paths.frames_tag.split('_')[0]} frames"
        audio = source["source"] if source["has_audio"] else None
    title = f"{paths.song} · {emb['meta']['architecture']} · {what}" + (" · PCA" if note else "")
    kwargs = dict(P=P, t_center=emb["t_center"], **panels, width=WIDTH, height=HEIGHT, tail_seconds=TAIL_SECONDS,
                  degrees_per_second=DEGREES_PER_SECOND, title=title, duration=record["duration_s"])
    with store.group_commit() as group:
        mp4 = group.stage(paths.video)
        n = video.render(mp4, audio, kwargs, record["duration_s"], FPS, WORKERS or None, PROGRESS)
        provenance.write_sidecar(mp4, "video", cfg, run=paths.run, frames=n, fps=FPS,
                                 inputs={"embedding": emb["meta"], "frames" if source else "spectrogram": record,
                                         "audio": (record["source"], record["source_sha256"])},
                                 duration_s=record["duration_s"], audio=audio,
                                 sync="the point shown at time t is the path at the window centred on t"
                                      + ("; the frame shown is the source frame with the largest time <= t"
                                         if source else ""))
    return n, record, audio


if __name__ == "__main__":
    cli.run(main)
