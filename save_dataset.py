"""Stage 1: read a song, make its magnitude spectrogram, save it to data/<song>/."""
from dae import artifacts, cli, dataset, plotting
from dae.artifacts import Paths
from settings import SONG, WINDOW_SECONDS, DATA_DIR, OUTPUT_DIR  # shared settings

PLOT = True  # also save outputs/<song>/spectrogram.png


def main():
    cfg = cli.configure(globals())
    paths = Paths(SONG, DATA_DIR, OUTPUT_DIR)
    with artifacts.writing(paths, "save_dataset.py"):
        _save(paths, cfg)


def _save(paths, cfg):
    meta = dataset.make(SONG, paths, WINDOW_SECONDS)
    print(f"{meta['source']}: {meta['duration_s']:.1f} s at {meta['sample_rate']} Hz -> "
          f"{meta['height']} frequency bins (0-{meta['f_top']:.0f} Hz) x {meta['n_time']} columns "
          f"({meta['bins_per_second']:.2f}/s); a {WINDOW_SECONDS:g} s window is {meta['window_width']} columns")
    print(f"saved {paths.spectrogram}")
    if PLOT:
        F, T, S, spec = dataset.load(paths)
        plotting.spectrogram_png(paths.spectrogram_png, F, T, S, f"{paths.song}: magnitude spectrogram")
        artifacts.write_sidecar(paths.spectrogram_png, "spectrogram plot", cfg, inputs={"spectrogram": spec})
        print(f"saved {paths.spectrogram_png}")


if __name__ == "__main__":
    cli.run(main)
