"""The sound of a song as a `dae.sources.Source`: spectrogram windows (the original method's input)."""
import numpy as np

from dae import dataset, plotting, provenance, store
from dae.errors import UserError
from dae.sources import TrainingData
from dae.spectrogram import scale_unit, variant_for, window_times, window_width

HOP = 1024   # samples per spectrogram column (Tukey(1024), no overlap)
EPOCHS = {"short": 6, "long": 7}   # the original's epochs for its 0.5 s and 2 s models


def default_epochs(window_seconds):
    """As the original: 6 epochs for the 0.5 s window, 7 for the 2 s one."""
    return EPOCHS[variant_for(window_seconds)]


class AudioSource:
    name = "audio"
    record_kind = "spectrogram"
    record_facts = ("source", "source_sha256", "sample_rate", "duration_s", "n_time", "window_width")
    maker = "save_dataset.py"

    def record_path(self, paths):
        return paths.spectrogram

    def run_tag(self, cfg):
        return None

    def save(self, paths, cfg):
        meta = dataset.make(cfg.song, paths, cfg.window_seconds)
        print(f"{meta['source']}: {meta['duration_s']:.1f} s at {meta['sample_rate']} Hz -> "
              f"{meta['height']} frequency bins (0-{meta['f_top']:.0f} Hz) x {meta['n_time']} columns "
              f"({meta['bins_per_second']:.2f}/s); a {cfg.window_seconds:g} s window is {meta['window_width']} "
              "columns")
        print(f"saved {paths.spectrogram}")
        if cfg.plot:
            F, T, S, spec = dataset.load(paths)
            with store.group_commit() as group:      # the picture and its record as one unit
                png = group.stage(paths.spectrogram_png)
                plotting.spectrogram_png(png, F, T, S, f"{paths.song}: magnitude spectrogram")
                provenance.write_sidecar(png, "spectrogram plot", cfg.settings(), inputs={"spectrogram": spec})
            print(f"saved {paths.spectrogram_png}")

    def saved(self, paths, cfg):
        chain = provenance.up_to_date(paths, "spectrogram", {"window_seconds": float(cfg.window_seconds)},
                                      need_audio=True)
        try:   # and made from the audio asked for (another file of the same name is not it)
            asked = provenance.file_hash(dataset.find_audio(cfg.song, paths))
        except (UserError, OSError):
            return False                        # `save` says what is wrong
        if chain is None or chain["spectrogram"]["source_sha256"] != asked:
            return False
        return not cfg.plot or provenance.up_to_date(paths, "spectrogram plot", cfg.settings(),
                                                     path=paths.spectrogram_png) is not None

    def training_data(self, paths, cfg):
        F, T, S, record = dataset.load(paths)   # checked against its record and its audio
        frames, lo, hi = scale_unit(S.T)           # (n_time, n_freq) in [0, 1]
        width = window_width(T, cfg.window_seconds)
        return TrainingData(frames=frames, width=width, rate=record["sample_rate"], hop=HOP, record=record,
                            scale=(lo, hi), validation=0.0, spread=0, chunk_samples=cfg.chunk_samples,
                            chunks_per_batch=cfg.chunks_per_batch, order=cfg.order,
                            epochs=default_epochs(cfg.window_seconds), what=f"window {width} x {frames.shape[1]}")

    def build_models(self, frames, width, latent_dim, history, window_seconds):
        from dae.model import build_decoder, build_encoder, build_forecaster, variant_for
        variant, height = variant_for(window_seconds), frames.shape[1]
        return (build_encoder(width, height, latent_dim, variant), build_decoder(width, height, latent_dim, variant),
                build_forecaster(history, latent_dim))

    def embed(self, encoder, meta, chain):
        from dae.embedding import TRAIN_HINT, encode
        F, T, S = dataset.arrays(chain["spectrogram"])
        frames = ((S.T - meta["scale_min"]) / (meta["scale_max"] - meta["scale_min"])).astype(np.float32)
        Z = encode(encoder, frames, int(meta["width"]))
        if not np.all(np.isfinite(Z)):
            raise UserError(f"the encoder of {meta['run']} gives NaN or infinite points; retrain: {TRAIN_HINT}")
        return (Z, *window_times(len(Z), int(meta["width"]), meta["sample_rate"]))

    def model_facts(self, record):
        return dict(sample_rate=record["sample_rate"])

    def embedding_facts(self, record, model):
        return dict(points_per_second=model["sample_rate"] / HOP)

    def what(self, paths, cfg):
        return f"{cfg.window_seconds:g} s window"

    def shown(self, chain, panel=True):
        record = chain["spectrogram"]
        return record, record["source"], ({"spec": dataset.arrays(record)} if panel else {})


SOURCE = AudioSource()
