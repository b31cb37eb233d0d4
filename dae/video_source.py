"""The pictures of a video as a `dae.sources.Source`: grayscale frames, one window per frame."""
import numpy as np

from dae import frames as video_frames
from dae import layout, provenance, store
from dae.errors import UserError
from dae.sources import TrainingData

VIDEO_EPOCHS = 12             # the original's video training
VIDEO_FORECASTER_UNITS = 32   # the original's video forecaster (the audio one has 16)


class VideoSource:
    name = "video"
    record_kind = "frames"
    record_facts = ("source", "source_sha256", "fps", "duration_s", "n_frames", "frame_size", "frame_step")
    maker = "save_dataset.py --source video"

    def record_path(self, paths):
        if paths.frames is None:
            raise UserError(f"{paths.run or paths.song} is not a video run; give --source video")
        return paths.frames

    def run_tag(self, cfg):
        return layout.frames_tag(cfg.frame_size, cfg.frame_step)

    def save(self, paths, cfg):
        meta = video_frames.make(cfg.song, paths, cfg.frame_step, cfg.folder_fps)
        h, w = meta["frame_size"]
        step = cfg.frame_step
        print(f"{meta['source']}: {meta['n_frames']} frames ({meta['duration_s']:.1f} s at {meta['fps']:.3g} "
              f"frames/s{', every ' + str(step) + 'th' if step > 1 else ''}) of "
              f"{meta['source_size'][0]}x{meta['source_size'][1]} -> gray {h}x{w}, uint8 "
              f"({meta['n_frames'] * h * w / 1e6:.1f} MB)" + ("; it has a sound track" if meta["has_audio"] else ""))
        print(f"saved {paths.frames}")
        if cfg.plot:
            frames, times, rec = video_frames.load(paths)
            with store.group_commit() as group:      # the picture and its record as one unit
                png = group.stage(paths.frames_png)
                video_frames.contact_sheet(png, frames, times, f"{paths.song}: frames at {h}x{w}")
                provenance.write_sidecar(png, "frames plot", cfg.settings(), inputs={"frames": rec})
            print(f"saved {paths.frames_png}")

    def saved(self, paths, cfg):
        chain = provenance.up_to_date(paths, "frames", {"frame_size": list(layout.parse_size(cfg.frame_size)),
                                                        "frame_step": int(cfg.frame_step)}, need_audio=True)
        folder_fps = chain["frames"].get("folder_fps") if chain is not None else None   # None: a video file
        try:   # and made from the video asked for (another file of the same name is not it)
            asked = provenance.source_hash(video_frames.find(cfg.song, paths))
        except (UserError, OSError):
            return False                        # `save` says what is wrong
        if chain is None or chain["frames"]["source_sha256"] != asked or \
                (folder_fps is not None and folder_fps != cfg.folder_fps):
            return False
        return not cfg.plot or provenance.up_to_date(paths, "frames plot", cfg.settings(),
                                                     path=paths.frames_png) is not None

    def training_data(self, paths, cfg):
        """A video run's frames (uint8, one frame per window), kept as they are: scaled per batch by 1/255."""
        frames, times, record = video_frames.load(paths)
        h, w = record["frame_size"]
        split = int(round(len(frames) * (1 - cfg.validation)))
        what = (f"{len(frames)} frames of {h}x{w} at {record['fps']:.3g}/s, the last {len(frames) - split} "
                f"({cfg.validation:.0%}) held out for validation")
        return TrainingData(frames=frames, width=1, rate=record["fps"], hop=1, record=record,
                            scale=video_frames.VIDEO_SCALE, validation=cfg.validation,
                            spread=cfg.video_spread_frames, chunk_samples=cfg.video_chunk_samples,
                            chunks_per_batch=cfg.video_chunks_per_batch, order=cfg.video_order,
                            epochs=VIDEO_EPOCHS, what=what)

    def build_models(self, frames, width, latent_dim, history, window_seconds):
        from dae.model import build_forecaster, build_frame_decoder, build_frame_encoder
        return (build_frame_encoder(frames.shape[1:], latent_dim, width),
                build_frame_decoder(frames.shape[1:], latent_dim, width),
                build_forecaster(history, latent_dim, units=VIDEO_FORECASTER_UNITS))

    def embed(self, encoder, meta, chain):
        """Window j holds frames j .. j+width-1 and is shown at the time of its last frame (t_center:
        for one frame per window, the frame's own time); it covers t_start = time of frame j to
        t_end = the end of its last frame."""
        from dae.embedding import TRAIN_HINT, encode
        record = chain["frames"]
        frames, times = video_frames.arrays(record)
        width = int(meta["width"])
        Z = encode(encoder, frames, width)
        if not np.all(np.isfinite(Z)):
            raise UserError(f"the encoder gives NaN or infinite points; retrain: {TRAIN_HINT}")
        n = len(Z)
        return Z, times[:n], times[width - 1:width - 1 + n], times[width - 1:width - 1 + n] + 1.0 / record["fps"]

    def model_facts(self, record):
        """The sample rate is the frame rate, one frame per step."""
        return dict(sample_rate=record["fps"], hop=1, points_per_second=record["fps"], source_kind="video",
                    frame_size=record["frame_size"])

    def embedding_facts(self, record, model):
        return dict(points_per_second=model["points_per_second"], source_kind="video", fps=record["fps"])

    def what(self, paths, cfg):
        return f"video, {paths.frames_tag.split('_')[0]} frames"

    def shown(self, chain, panel=True):
        record = chain["frames"]
        return record, (record["source"] if record["has_audio"] else None), {"frames": video_frames.arrays(record)}


SOURCE = VideoSource()
