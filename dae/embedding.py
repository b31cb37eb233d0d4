"""Stage 3: run a trained encoder over every window of a song."""
import numpy as np

from dae import artifacts, dataset
from dae.errors import UserError
from dae.spectrogram import sliding_windows, window_times

TRAIN_HINT = "run `python train_model.py` with the same settings first"
EMBED_HINT = "run `python embed_audio.py` with the same settings first"


def load_run(paths, need_audio=False):
    """The trained run's checked record chain and its encoder model.

    Checks the committed model (its three parts come from one save and match
    their records), that it belongs to this run, and the spectrogram and audio
    it was trained on. Returns (chain, encoder); chain["encoder"] is the run's
    record (the encoder sidecar).
    """
    chain = artifacts.check(paths, "encoder", need_audio=need_audio)
    meta = chain["encoder"]
    encoder = artifacts.load_keras(meta)
    want = (None, int(meta["width"]), int(meta["height"]))
    if tuple(encoder.input_shape) != want or encoder.output_shape[-1] != int(meta["latent_dim"]):
        raise UserError(f"{meta['path']} maps {encoder.input_shape[1:]} to {encoder.output_shape[-1]}-D but its run "
                        f"{paths.run} expects {want[1:]} to {meta['latent_dim']}-D; retrain: {TRAIN_HINT}")
    return chain, encoder


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
    """Embed the song of a trained run; returns (Z, t_start, t_center, t_end, chain).

    chain is the checked record chain (encoder, its model parts, spectrogram)."""
    chain, encoder = load_run(paths)
    meta = chain["encoder"]
    F, T, S = dataset.arrays(chain["spectrogram"])
    frames = ((S.T - meta["scale_min"]) / (meta["scale_max"] - meta["scale_min"])).astype(np.float32)
    Z = encode(encoder, frames, int(meta["width"]))
    if not np.all(np.isfinite(Z)):
        raise UserError(f"the encoder of {paths.run} gives NaN or infinite points; retrain: {TRAIN_HINT}")
    start, center, end = window_times(len(Z), int(meta["width"]), meta["sample_rate"])
    return Z, start, center, end, chain


def save(paths, Z, start, center, end, chain):
    """Save the embedding with a sidecar that records the encoder and spectrogram it came from."""
    meta = chain["encoder"]
    artifacts.save_npz(paths.embedding, Z=Z, t_start=start, t_center=center, t_end=end)
    artifacts.write_sidecar(paths.embedding, "embedding", meta["settings"],
                            inputs={"spectrogram": chain["spectrogram"], "encoder": meta},
                            run=paths.run, architecture=meta["architecture"], n_points=len(Z),
                            latent_dim=int(Z.shape[1]), points_per_second=meta["sample_rate"] / 1024.0,
                            width=meta["width"], sample_rate=meta["sample_rate"],
                            source=chain["spectrogram"]["source"], model_id=meta["model_id"])


def load(paths, need_audio=False):
    """A saved embedding, checked with the whole chain it was made from.

    Returns a dict with Z (N, d), t_start, t_center, t_end (N,) in s, its record
    ("meta") and the checked chain ("chain": embedding, encoder, spectrogram...).
    """
    chain = artifacts.check(paths, "embedding", need_audio=need_audio)
    meta = chain["embedding"]
    out = artifacts.arrays(meta, ("Z", "t_start", "t_center", "t_end"))
    Z = out["Z"]
    if (Z.ndim != 2 or Z.shape[1] != int(meta["latent_dim"]) or not np.issubdtype(Z.dtype, np.floating)
            or any(out[k].shape != (len(Z),) for k in ("t_start", "t_center", "t_end"))
            or not np.all(np.isfinite(Z))):
        raise UserError(f"{meta['path']} holds a path of shape {Z.shape} that does not fit its record "
                        f"({meta['latent_dim']}-D, finite); {EMBED_HINT.replace(' first', '')}")
    out["meta"], out["chain"] = meta, chain
    return out
