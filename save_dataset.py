"""Stage 1: read a song, make its magnitude spectrogram, save it to data/<song>/
(or, with --source video, read a video's frames and save them to data/<video>/)."""
from dae import cli, dataset, layout, plotting, provenance, store
from dae.layout import Paths
from settings import SONG, WINDOW_SECONDS, SOURCE, FRAME_SIZE, FRAME_STEP, DATA_DIR, OUTPUT_DIR  # shared settings

PLOT = True        # also save outputs/<song>/spectrogram.png (a video: a sheet of frames, frames_<size>_s<step>.png)
FOLDER_FPS = 30.0  # video: frames per second of a folder of frame images (a video file has its own rate)


def main():
    cfg = cli.configure(globals())
    paths = Paths(SONG, DATA_DIR, OUTPUT_DIR, frames=layout.source_frames(cfg))
    with store.writing(paths, "save_dataset.py"):
        if paths.frames is not None:
            _save_frames(paths, cfg)
        else:
            _save(paths, cfg)


def _save(paths, cfg):
    meta = dataset.make(SONG, paths, WINDOW_SECONDS)
    print(f"{meta['source']}: {meta['duration_s']:.1f} s at {meta['sample_rate']} Hz -> "
          f"{meta['height']} frequency bins (0-{meta['f_top']:.0f} Hz) x {meta['n_time']} columns "
          f"({meta['bins_per_second']:.2f}/s); a {WINDOW_SECONDS:g} s window is {meta['window_width']} columns")
    print(f"saved {paths.spectrogram}")
    if PLOT:
        F, T, S, spec = dataset.load(paths)
        with store.group_commit() as group:          # the picture and its record as one unit
            png = group.stage(paths.spectrogram_png)
            plotting.spectrogram_png(png, F, T, S, f"{paths.song}: magnitude spectrogram")
            provenance.write_sidecar(png, "spectrogram plot", cfg, inputs={"spectrogram": spec})
        print(f"saved {paths.spectrogram_png}")


def _save_frames(paths, cfg):
    from dae import frames as video_frames
    meta = video_frames.make(SONG, paths, FRAME_STEP, FOLDER_FPS)
    h, w = meta["frame_size"]
    print(f"{meta['source']}: {meta['n_frames']} frames ({meta['duration_s']:.1f} s at {meta['fps']:.3g} frames/s"
          f"{', every ' + str(FRAME_STEP) + 'th' if FRAME_STEP > 1 else ''}) of "
          f"{meta['source_size'][0]}x{meta['source_size'][1]} -> gray {h}x{w}, uint8 "
          f"({meta['n_frames'] * h * w / 1e6:.1f} MB)" + ("; it has a sound track" if meta["has_audio"] else ""))
    print(f"saved {paths.frames}")
    if PLOT:
        frames, times, rec = video_frames.load(paths)
        with store.group_commit() as group:          # the picture and its record as one unit
            png = group.stage(paths.frames_png)
            video_frames.contact_sheet(png, frames, times, f"{paths.song}: frames at {h}x{w}")
            provenance.write_sidecar(png, "frames plot", cfg, inputs={"frames": rec})
        print(f"saved {paths.frames_png}")


if __name__ == "__main__":
    cli.run(main)
