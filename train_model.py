"""Stage 2: train the conditioned autoencoder on one song (R when ALPHA = 0, R-F when > 0)."""
from dae import artifacts, cli, dataset
from dae.errors import UserError
from dae.spectrogram import scale_unit, window_width
from settings import (SONG, WINDOW_SECONDS, LATENT_DIM, ALPHA, BETA, GAMMA, DELTA,  # shared settings
                      HISTORY, HORIZON, HORIZON_DECAY, LENGTH_WEIGHT, SEED, DATA_DIR, OUTPUT_DIR)

EPOCHS = 0               # 0 = as the original: 6 for a 0.5 s window, 7 for 2 s
LEARNING_RATE = 1e-3     # Adam
CHUNK_SAMPLES = 1        # consecutive samples per chunk; each chunk encodes CHUNK_SAMPLES + HISTORY windows once
CHUNKS_PER_BATCH = 8     # chunks per gradient step (batch = CHUNK_SAMPLES * CHUNKS_PER_BATCH samples)
ORDER = "original"       # "original": the original's 70% shuffle buffer over chunks; "tiled": random-phase tiling each epoch
RESUME = True            # continue an interrupted run from its last epoch; false starts over
VERBOSE = 1              # Keras progress: 0 silent, 1 progress bar, 2 one line per epoch


def main():
    cfg = cli.configure(globals())
    paths = artifacts.run_paths(cfg)
    from dae import training  # TensorFlow loads after the command line is checked
    with artifacts.writing(paths, "train_model.py"):
        F, T, S, spec = dataset.load(paths)  # checked against its record and its audio
        frames, lo, hi = scale_unit(S.T)  # (n_time, n_freq) in [0, 1]
        width = window_width(T, WINDOW_SECONDS)
        epochs = EPOCHS or training.default_epochs(WINDOW_SECONDS)
        print(f"training {paths.run} on {paths.song}: window {width} x {frames.shape[1]}, {epochs} epochs")
        model, rows = training.train(
            paths, frames, width, spec["sample_rate"], spec["source_sha256"], latent_dim=LATENT_DIM,
            history=HISTORY, window_seconds=WINDOW_SECONDS, alpha=ALPHA, beta=BETA, gamma=GAMMA, delta=DELTA,
            epochs=epochs, chunk_samples=CHUNK_SAMPLES, chunks_per_batch=CHUNKS_PER_BATCH,
            learning_rate=LEARNING_RATE, seed=SEED, order=ORDER, horizon=HORIZON, horizon_decay=HORIZON_DECAY,
            length_weight=LENGTH_WEIGHT, resume=RESUME, verbose=VERBOSE,
            record=training.model_record(cfg | {"EPOCHS": epochs}, spec, (lo, hi), ALPHA))
    if model is None:  # nothing to train: the committed model must still be the one for this spectrogram
        try:
            artifacts.check(paths, "encoder")
        except UserError as e:
            raise UserError(f"{paths.run} has all {epochs} epochs but its saved model is unusable ({e}); "
                                "start over with --resume false") from None
        return
    print(f"saved {paths.model_dir} -> {paths.model_dir.resolve().name}/{{encoder,decoder,forecaster}}.keras "
          f"and {paths.history.name}")
    last = rows[-1]
    print(f"final (epoch {last['epoch']}, {last['seconds']:.1f} s): {training.loss_line(last, model.weighted_terms())}")


if __name__ == "__main__":
    cli.run(main)
