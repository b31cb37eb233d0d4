"""Stage 3: run a trained encoder over every window of a song."""
import numpy as np

from dae import dataset, provenance, store
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
    chain = provenance.check(paths, "encoder", need_audio=need_audio)
    meta = chain["encoder"]
    encoder = provenance.load_keras(meta)
    want = (None, *map(int, meta["input_shape"])) if "input_shape" in meta else \
        (None, int(meta["width"]), int(meta["height"]))
    if tuple(encoder.input_shape) != want or encoder.output_shape[-1] != int(meta["latent_dim"]):
        raise UserError(f"{meta['path']} maps {encoder.input_shape[1:]} to {encoder.output_shape[-1]}-D but its run "
                        f"{paths.run} expects {want[1:]} to {meta['latent_dim']}-D; retrain: {TRAIN_HINT}")
    return chain, encoder


PIXELS_PER_BATCH = 2_500_000   # a batch of video windows holds at most this many pixels (activations stay small)


def window_batches(frames, width, batch_size=1024):
    """Every window position, in order, as float32 batches the encoder reads.

    frames : (n_time, height) scaled spectrogram -> windows (width, height); or
    (n_frames, h, w) uint8 video frames -> windows (h, w, width), scaled to
    [0, 1] one batch at a time (a long video is never held as float).
    """
    if frames.ndim == 3:
        windows = np.lib.stride_tricks.sliding_window_view(frames, width, axis=0)   # (N - width + 1, h, w, width)
        batch_size = max(1, min(batch_size, PIXELS_PER_BATCH // (frames.shape[1] * frames.shape[2] * width)))
        for i in range(0, len(windows), batch_size):
            yield windows[i:i + batch_size].astype(np.float32) * np.float32(1 / 255)
        return
    windows = sliding_windows(frames, width)
    for i in range(0, len(windows), batch_size):
        yield np.ascontiguousarray(windows[i:i + batch_size], dtype=np.float32)


def encode(encoder, frames, width, batch_size=1024):
    """Embed every window position.

    encoder : keras model window -> (d,); frames : (n_time, height) scaled
    spectrogram or (n_frames, h, w) uint8 video frames. Returns Z of shape
    (n_time - width + 1, d), float32; Z[j] summarises columns (frames) j .. j+width-1.
    """
    out = [encoder.predict_on_batch(x) for x in window_batches(frames, width, batch_size)]
    return np.concatenate(out).astype(np.float32)


def embed_song(paths):
    """Embed the song (or video) of a trained run; returns (Z, t_start, t_center, t_end, chain).

    chain is the checked record chain (encoder, its model parts, spectrogram or frames); the
    `dae.sources.Source` it was made from embeds its windows and times them."""
    from dae import sources
    chain, encoder = load_run(paths)
    return (*sources.of_chain(chain).embed(encoder, chain["encoder"], chain), chain)


def save(paths, Z, start, center, end, chain):
    """Save the embedding with a sidecar that records the encoder and dataset it came from."""
    from dae import sources
    meta = chain["encoder"]
    source = sources.record_of(chain)
    with store.group_commit() as group:          # the path and its record as one unit
        target = group.stage(paths.embedding)
        store.save_npz(target, Z=Z, t_start=start, t_center=center, t_end=end)
        provenance.write_sidecar(target, "embedding", meta["settings"],
                                 inputs={source["kind"]: source, "encoder": meta},
                                 run=paths.run, architecture=meta["architecture"], n_points=len(Z),
                                 latent_dim=int(Z.shape[1]), width=meta["width"], sample_rate=meta["sample_rate"],
                                 source=source["source"], model_id=meta["model_id"],
                                 **sources.of_chain(chain).embedding_facts(source, meta))


def load(paths, need_audio=False):
    """A saved embedding, checked with the whole chain it was made from.

    Returns a dict with Z (N, d), t_start, t_center, t_end (N,) in s, its record
    ("meta") and the checked chain ("chain": embedding, encoder, spectrogram...).
    """
    chain = provenance.check(paths, "embedding", need_audio=need_audio)
    meta = chain["embedding"]
    out = provenance.arrays(meta, ("Z", "t_start", "t_center", "t_end"))
    Z = out["Z"]
    if (Z.ndim != 2 or Z.shape[1] != int(meta["latent_dim"]) or not np.issubdtype(Z.dtype, np.floating)
            or any(out[k].shape != (len(Z),) for k in ("t_start", "t_center", "t_end"))
            or not np.all(np.isfinite(Z))):
        raise UserError(f"{meta['path']} holds a path of shape {Z.shape} that does not fit its record "
                        f"({meta['latent_dim']}-D, finite); {EMBED_HINT.replace(' first', '')}")
    out["meta"], out["chain"] = meta, chain
    return out
