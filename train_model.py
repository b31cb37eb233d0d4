"""Stage 2: train the conditioned autoencoder on one song (R when ALPHA = 0, R-F when > 0),
or on a video's frames (--source video)."""
from dae import cli, dataset, layout, provenance, store
from dae.errors import UserError
from dae.spectrogram import scale_unit, window_width
from settings import (SONG, WINDOW_SECONDS, LATENT_DIM, ALPHA, BETA, GAMMA, DELTA,  # shared settings
                      HISTORY, HORIZON, HORIZON_DECAY, LENGTH_WEIGHT, SOURCE, FRAME_SIZE, FRAME_STEP, SEED,
                      DATA_DIR, OUTPUT_DIR)

EPOCHS = 0               # 0 = as the original: 6 for a 0.5 s window, 7 for 2 s, 12 for a video
LEARNING_RATE = 1e-3     # Adam
CHUNK_SAMPLES = 1        # consecutive samples per chunk; each chunk encodes CHUNK_SAMPLES + HISTORY windows once
CHUNKS_PER_BATCH = 8     # chunks per gradient step (batch = CHUNK_SAMPLES * CHUNKS_PER_BATCH samples)
ORDER = "original"       # "original": the original's 70% shuffle buffer over chunks; "tiled": random-phase tiling each epoch
VIDEO_CHUNK_SAMPLES = 16     # video runs: consecutive samples per chunk (neighbouring frames share their history's encodes)
VIDEO_CHUNKS_PER_BATCH = 1   # video runs: chunks per step (memory grows with it: 4 at 150x268 needs about 4.4 GB)
VIDEO_ORDER = "tiled"        # video runs: the schedule's order (see ORDER)
VIDEO_SPREAD_FRAMES = 8      # video runs: frames drawn from across the video each step, reconstructed with the chunk's
VALIDATION = 0.2         # video runs: the last fraction of the frames, never trained on, scored each epoch (audio: none, as the original)
RESUME = True            # continue an interrupted run from its last epoch; false starts over
VERBOSE = 1              # Keras progress: 0 silent, 1 progress bar, 2 one line per epoch


def main():
    cfg = cli.configure(globals())
    paths = layout.run_paths(cfg)
    from dae import training  # TensorFlow loads after the command line is checked
    with store.writing(paths, "train_model.py"):
        if paths.frames is not None:
            frames, width, rate, hop, source, scale, validation, what = _video(paths)
        else:
            F, T, S, source = dataset.load(paths)  # checked against its record and its audio
            frames, lo, hi = scale_unit(S.T)  # (n_time, n_freq) in [0, 1]
            width, rate, hop, scale, validation = window_width(T, WINDOW_SECONDS), source["sample_rate"], 1024, \
                (lo, hi), 0.0
            what = f"window {width} x {frames.shape[1]}"
        video = paths.frames is not None
        epochs = EPOCHS or training.default_epochs(WINDOW_SECONDS, video=video)
        chunk_samples, chunks_per_batch, order = (VIDEO_CHUNK_SAMPLES, VIDEO_CHUNKS_PER_BATCH, VIDEO_ORDER) if video \
            else (CHUNK_SAMPLES, CHUNKS_PER_BATCH, ORDER)
        print(f"training {paths.run} on {paths.song}: {what}, {epochs} epochs")
        model, rows = training.train(
            paths, frames, width, rate, source["source_sha256"], latent_dim=LATENT_DIM,
            history=HISTORY, window_seconds=WINDOW_SECONDS, alpha=ALPHA, beta=BETA, gamma=GAMMA, delta=DELTA,
            epochs=epochs, chunk_samples=chunk_samples, chunks_per_batch=chunks_per_batch,
            learning_rate=LEARNING_RATE, seed=SEED, order=order, horizon=HORIZON, horizon_decay=HORIZON_DECAY,
            length_weight=LENGTH_WEIGHT, resume=RESUME, verbose=VERBOSE, validation=validation, hop=hop,
            spread=VIDEO_SPREAD_FRAMES if video else 0,
            record=training.model_record(cfg | {"EPOCHS": epochs}, source, scale, ALPHA))
    if model is None:  # nothing to train: the committed model must still be the one for this spectrogram
        try:
            provenance.check(paths, "encoder")
        except UserError as e:
            raise UserError(f"{paths.run} has all {epochs} epochs but its saved model is unusable ({e}); "
                                "start over with --resume false") from None
        return
    print(f"saved {paths.model_dir} -> {paths.model_dir.resolve().name}/{{encoder,decoder,forecaster}}.keras "
          f"and {paths.history.name}")
    last = rows[-1]
    print(f"final (epoch {last['epoch']}, {last['seconds']:.1f} s): {training.loss_line(last, model.weighted_terms())}")


def _video(paths):
    """A video run's frames (uint8, one frame per window), kept as they are: scaled per batch by 1/255."""
    from dae import frames as video_frames
    frames, times, source = video_frames.load(paths)
    h, w = source["frame_size"]
    split = int(round(len(frames) * (1 - VALIDATION)))
    what = (f"{len(frames)} frames of {h}x{w} at {source['fps']:.3g}/s, the last {len(frames) - split} "
            f"({VALIDATION:.0%}) held out for validation")
    return frames, 1, source["fps"], 1, source, video_frames.VIDEO_SCALE, VALIDATION, what


if __name__ == "__main__":
    cli.run(main)
