"""Every stage on one song, with the settings every stage shares given once.

    python pipeline.py --song path/to/mysong.mp3
    python pipeline.py --song mysong --window-seconds 2 --latent-dim 12 --format html

Runs save_dataset.py once; then, for R-F (ALPHA) and, with COMPARE_R, for the
plain autoencoder R (ALPHA = 0), train_model.py, embed_audio.py, the latent
models, the three forecasts, divergence.py and play_embedding.py (for a
video, SOURCE = "video", with the video's frames beside the path); then the
notebook divergence_plots.ipynb for the song; last, it writes the song's
index page outputs/<song>/index.html (every run's player page, video and
pictures, with the R against R-F numbers and a verdict in one line), which
its last line names. Each stage is its script's own
stage function (`dae.stages`), called in this process with a config made
from settings.py, that script's constants and the settings given here, as
when the script is typed by hand with them; EPOCHS and FORMAT go to the one
stage they belong to. The first stage that fails ends the pipeline with its
one line and exit status 1; run the same command again to go on: every stage
whose outputs are up to date (same inputs, settings and code) says so and is
skipped. `make demo` is this on the demo song.

The slow parts, for a song of several minutes: training (twice, R-F and R),
the latent MLP and LSTM, and rendering R-F's MP4 video (R gets its player
page only: R_FORMAT). `--format html` writes the player page (the song's
audio with its path, in the browser) without rendering any video, and
`--compare-r false` trains R-F alone. With
SIDE_BY_SIDE (the default, on a machine of two cores or more) R-F's stages and
R's run at the same time, each in a process of its own with one core, their
lines labelled `R-F |` and `R |`.
"""
import functools
import os
from pathlib import Path

import settings  # the settings every stage shares (SONG, WINDOW_SECONDS, ALPHA, ...)
import divergence, embed_audio, forecast_knn, forecast_lstm, forecast_mlp, play_embedding, save_dataset  # noqa: E401
import train_latent_lstm, train_latent_mlp, train_model  # noqa: E401  (their constants)
from dae import cli, config, index_page, layout, notebook, side_by_side, stages

EPOCHS = 0           # train_model.py's: 0 = as the original (6 for a 0.5 s window, 7 for 2 s)
FORMAT = "both"      # play_embedding.py's: "mp4" (the video), "html" (the player page only: no rendering, fast) or "both"
COMPARE_R = True     # also run the plain autoencoder R (ALPHA = 0) beside R-F, for the notebook to compare
R_FORMAT = "html"    # play_embedding.py's FORMAT for that R: its player page only (its video would double the render)
NOTEBOOK = True      # end with divergence_plots.ipynb for the song: outputs/<song>/divergence.png and the R vs R-F figure
SIDE_BY_SIDE = True  # run R-F's stages and R's at the same time, a process and a core each (two cores or more)

ROOT = Path(__file__).resolve().parent
# (script, its config, its stage function) of every stage of one run, in order
RUN_STAGES = (
    (train_model, config.Training, stages.train_model),
    (embed_audio, config.Embedding, stages.embed_audio),
    (train_latent_mlp, config.LatentTraining, functools.partial(stages.train_latent_model, kind="mlp")),
    (train_latent_lstm, config.LatentTraining, functools.partial(stages.train_latent_model, kind="lstm")),
    (forecast_knn, config.KnnForecast, stages.forecast_knn),
    (forecast_mlp, config.Forecast, functools.partial(stages.forecast_latent_model, kind="mlp")),
    (forecast_lstm, config.Forecast, functools.partial(stages.forecast_latent_model, kind="lstm")),
    (divergence, config.Divergence, stages.divergence),
    (play_embedding, config.Player, stages.play_embedding),
)


def name_of(script):
    return Path(script.__file__).name


def plan(cfg: config.Pipeline):
    """The stages for the pipeline's settings `cfg`: (the song's first, [(run label, its stages)] for
    R-F and R, the last), each stage (title, stage function, its config)."""
    shared = {name: getattr(cfg, name) for name in config.Run.names()}   # the song, its source and its run
    song = {k: v for k, v in shared.items() if k in config.Spectrogram.names()}
    first = [(name_of(save_dataset), stages.save_dataset, config.Spectrogram.from_constants(settings, save_dataset, **song))]
    alphas = [cfg.alpha] + ([0.0] if cfg.compare_r and cfg.alpha > 0 else [])
    runs = []
    for alpha in alphas:
        own = {train_model: {"epochs": cfg.epochs},
               play_embedding: {"format": cfg.format if alpha == cfg.alpha else cfg.r_format}}
        chain = []
        for script, kind, function in RUN_STAGES:
            stage_cfg = kind.from_constants(settings, script, **(shared | {"alpha": alpha} | own.get(script, {})))
            chain.append((f"{name_of(script)} ({layout.run_paths(stage_cfg).run})", function, stage_cfg))
        runs.append(("R-F" if alpha > 0 else "R", chain))
    last = []
    if cfg.notebook:
        book = config.Notebook(song=cfg.song, data_dir=str(Path(cfg.data_dir).resolve()),
                               output_dir=str(Path(cfg.output_dir).resolve()))
        last.append(("divergence_plots.ipynb", functools.partial(notebook.run, ROOT / "divergence_plots.ipynb"), book))
    return first, runs, last


def steps(cfg: config.Pipeline):
    """(title, stage function, its config) of every stage in order, for the pipeline's settings `cfg`."""
    first, runs, last = plan(cfg)
    return first + [step for _, chain in runs for step in chain] + last


def stage_lines(stdout):
    """{stage title: the lines it printed} of this script's output `stdout` (side by side too: a line
    labelled `R-F |` or `R |` goes, without its label, to that run's stage running then)."""
    out, now, last = {}, {}, None
    for line in stdout.splitlines():
        if line.startswith("== done"):
            break
        if line.startswith("== [") and "] " in line:
            last = line.split("] ", 1)[1]
            out[last] = []
            if last.endswith(")"):                       # a run's stage: R's run is named with alpha 0 (_a0_)
                now["R" if "_a0_" in last else "R-F"] = last
            continue
        label, sep, text = line.partition(" | ")
        title = now.get(label, last) if sep and label in ("R", "R-F") else last
        if title is not None:
            out[title].append(text if sep and label in ("R", "R-F") else line)
    return out


def main():
    cfg = cli.parse(config.Pipeline, settings, globals())
    first, runs, last = plan(cfg)
    total = len(steps(cfg))
    for i, (title, function, stage_cfg) in enumerate(first, 1):
        print(f"== [{i}/{total}] {title}", flush=True)
        function(stage_cfg)          # a failure ends the pipeline here, with its one line (cli.run)
    if cfg.side_by_side and len(runs) > 1 and (os.cpu_count() or 1) >= 2:
        side_by_side.run(runs, first=len(first) + 1, total=total)
    else:
        for i, (title, function, stage_cfg) in enumerate((s for _, chain in runs for s in chain), len(first) + 1):
            print(f"== [{i}/{total}] {title}", flush=True)
            function(stage_cfg)
    for i, (title, function, stage_cfg) in enumerate(last, total - len(last) + 1):
        print(f"== [{i}/{total}] {title}", flush=True)
        function(stage_cfg)
    page = index_page.write_index(layout.Paths(cfg.song, cfg.data_dir, cfg.output_dir))
    print(f"== done: {total} stages for {layout.song_name(cfg.song)}; open {page}")


if __name__ == "__main__":
    cli.run(main)
