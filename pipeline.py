"""Every stage on one song with the same settings, given once:

    python pipeline.py --song path/to/mysong.mp3
    python pipeline.py --song mysong --window-seconds 2 --latent-dim 12 --format html

Runs save_dataset.py once; then, for R-F (ALPHA) and, with COMPARE_R, for the
plain autoencoder R (ALPHA = 0), train_model.py, embed_audio.py, the latent
models, the three forecasts, divergence.py and play_embedding.py (for a
video, SOURCE = "video", with the video's frames beside the path); then the
notebook divergence_plots.ipynb for the song (`python -m dae.notebook`). Each
stage runs as its own process, exactly as when typed by hand, and gets every
shared setting (settings.py's) it reads; EPOCHS and FORMAT go to the one stage
they belong to. The first stage that fails ends the pipeline with its own one
line and exit status; run the same command again to go on (a finished
training is kept, not repeated). `make demo` is this on the demo song.
"""
import os
import subprocess
import sys
from pathlib import Path

from dae import cli, layout
from dae.errors import UserError
from settings import (SONG, WINDOW_SECONDS, LATENT_DIM, ALPHA, BETA, GAMMA, DELTA,  # shared settings
                      HISTORY, HORIZON, HORIZON_DECAY, LENGTH_WEIGHT, SOURCE, FRAME_SIZE, FRAME_STEP,
                      SEED, DATA_DIR, OUTPUT_DIR)

EPOCHS = 0           # train_model.py's: 0 = as the original (6 for a 0.5 s window, 7 for 2 s)
FORMAT = "both"      # play_embedding.py's: "mp4" (the video), "html" (the player page only: no rendering, fast) or "both"
COMPARE_R = True     # also run the plain autoencoder R (ALPHA = 0) beside R-F, for the notebook to compare
NOTEBOOK = True      # end with divergence_plots.ipynb for the song: outputs/<song>/divergence.png and the R vs R-F figure

ROOT = Path(__file__).resolve().parent
SPECTROGRAM = ("save_dataset.py", ("SONG", "WINDOW_SECONDS", "SOURCE", "FRAME_SIZE", "FRAME_STEP",
                                    "DATA_DIR", "OUTPUT_DIR"))  # once a song: the settings it reads
RUN_STAGES = ("train_model.py", "embed_audio.py", "train_latent_mlp.py", "train_latent_lstm.py",
              "forecast_knn.py", "forecast_mlp.py", "forecast_lstm.py", "divergence.py", "play_embedding.py")
OWN = {"train_model.py": ("EPOCHS",), "play_embedding.py": ("FORMAT",)}  # settings here that belong to one stage


def commands(cfg):
    """(title, argv) of every stage in order, for the settings `cfg` (this script's, parsed)."""
    shared = {name: cfg[name] for name in layout.RUN_IDENTITY}
    script, reads = SPECTROGRAM
    steps = [(script, [sys.executable, str(ROOT / script), *cli.flags({k: shared[k] for k in reads})])]
    alphas = [cfg["ALPHA"]] + ([0.0] if cfg["COMPARE_R"] and cfg["ALPHA"] > 0 else [])
    for alpha in alphas:
        run = shared | {"ALPHA": alpha}
        name = layout.run_name(*(run[k] for k in layout.RUN_SETTINGS))
        for script in RUN_STAGES:
            own = {k: cfg[k] for k in OWN.get(script, ())}
            steps.append((f"{script} ({name})", [sys.executable, str(ROOT / script), *cli.flags(run | own)]))
    if cfg["NOTEBOOK"]:
        notebook = ROOT / "divergence_plots.ipynb"
        steps.append((f"{notebook.name}", [sys.executable, "-m", "dae.notebook", str(notebook),
                                           *cli.flags({k: shared[k] for k in ("SONG", "DATA_DIR", "OUTPUT_DIR")})]))
    return steps


def main():
    cfg = cli.configure(globals())
    from play_embedding import FORMATS
    if cfg["FORMAT"] not in FORMATS:
        raise UserError(f"FORMAT={cfg['FORMAT']!r} is not one of {', '.join(FORMATS)}")
    steps = commands(cfg)
    path = os.environ.get("PYTHONPATH")
    env = dict(os.environ, DAE_ROOT=str(ROOT), PYTHONPATH=str(ROOT) + (os.pathsep + path if path else ""))
    for i, (title, argv) in enumerate(steps, 1):
        print(f"== [{i}/{len(steps)}] {title}", flush=True)
        code = subprocess.run(argv, env=env).returncode
        if code:
            sys.exit(code)   # the stage has said why, in one line
    print(f"== done: {len(steps)} stages for {layout.song_name(cfg['SONG'])}; "
          f"pictures, videos and pages under {Path(cfg['OUTPUT_DIR']) / layout.song_name(cfg['SONG'])}")


if __name__ == "__main__":
    cli.run(main)
