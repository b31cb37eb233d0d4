"""Stage 3: run a trained encoder over every window of a song."""
import numpy as np

from dae import artifacts, dataset
from dae.errors import UserError
from dae.spectrogram import sliding_windows, window_times

TRAIN_HINT = "run `python train_model.py` with the same settings first"
EMBED_HINT = "run `python embed_audio.py` with the same settings first"


def load_run(paths):
    """The trained run's record (the encoder sidecar) and its encoder model."""
    meta = artifacts.read_sidecar(paths.encoder, "encoder", f"no trained model for {paths.run}; {TRAIN_HINT}")
    import keras
    try:
        encoder = keras.models.load_model(paths.encoder, compile=False)
    except Exception as e:  # a damaged or foreign file
        raise UserError(f"{paths.encoder} could not be loaded ({type(e).__name__}); retrain: {TRAIN_HINT}") from None
    return meta, encoder


def encode(encoder, frames, width, batch_size=1024):
    """Embed every window position.

    encoder : keras model (width, height) -> (d,); frames : (n_time, height)
    scaled spectrogram. Returns Z of shape (n_time - width + 1, d), float32;
    Z[j] summarises columns j .. j+width-1.
    """
    windows = sliding_windows(frames, width)
    out = [encoder.predict_on_batch(np.ascontiguousarray(windows[i:i + batch_size], dtype=np.float32))
           for i in range(0, len(windows), batch_size)]
    return np.concatenate(out).astype(np.float32)


def embed_song(paths):
    """Embed the song of a trained run; returns (Z, t_start, t_center, t_end, run meta)."""
    meta, encoder = load_run(paths)
    F, T, S, spec = dataset.load(paths)
    if artifacts.file_hash(paths.spectrogram) != meta["spectrogram_sha256"]:
        raise UserError(f"{paths.spectrogram} changed since {paths.run} was trained; "
                        "rerun `python train_model.py --resume false` with the same settings")
    frames = ((S.T - meta["scale_min"]) / (meta["scale_max"] - meta["scale_min"])).astype(np.float32)
    Z = encode(encoder, frames, meta["width"])
    start, center, end = window_times(len(Z), meta["width"], meta["sample_rate"])
    return Z, start, center, end, meta


def save(paths, Z, start, center, end, meta):
    artifacts.save_npz(paths.embedding, Z=Z, t_start=start, t_center=center, t_end=end)
    artifacts.write_sidecar(paths.embedding, "embedding", meta["settings"], run=paths.run,
                            architecture=meta["architecture"], n_points=len(Z), latent_dim=int(Z.shape[1]),
                            points_per_second=meta["sample_rate"] / 1024.0, width=meta["width"],
                            sample_rate=meta["sample_rate"], source=meta["settings"]["SONG"],
                            encoder_sha256=artifacts.file_hash(paths.encoder))


def load(paths):
    """A saved embedding: dict with Z (N, d), t_start, t_center, t_end (N,) in s, and its meta."""
    meta = artifacts.read_sidecar(paths.embedding, "embedding", f"no embedding for {paths.run}; {EMBED_HINT}")
    with np.load(paths.embedding) as d:
        out = {k: d[k] for k in d.files}
    out["meta"] = meta
    return out
