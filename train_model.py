"""Stage 2: train the conditioned autoencoder on one song (R when ALPHA = 0, R-F when > 0),
or on a video's frames (--source video)."""
import settings  # the settings every stage shares (SONG, WINDOW_SECONDS, ALPHA, SEED, ...)
from dae import cli, config, stages

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
    cfg = cli.parse(config.Training, settings, globals())
    stages.train_model(cfg)


if __name__ == "__main__":
    cli.run(main)
