"""Stage 1: read a song, make its magnitude spectrogram, save it to data/<song>/
(or, with --source video, read a video's frames and save them to data/<video>/)."""
import settings  # the settings every stage shares (SONG, SOURCE, DATA_DIR, ...)
from dae import cli, config, stages

PLOT = True        # also save outputs/<song>/spectrogram.png (a video: a sheet of frames, frames_<size>_s<step>.png)
FOLDER_FPS = 30.0  # video: frames per second of a folder of frame images (a video file has its own rate)


def main():
    cfg = cli.parse(config.Spectrogram, settings, globals())
    stages.save_dataset(cfg)


if __name__ == "__main__":
    cli.run(main)
