"""The README's pictures, made by the real pipeline (not by hand).

Runs every stage that draws a static picture, through the stage scripts, on
the bundled demo song and on a synthesised 4-minute song (dae.synth.song),
then copies the pictures into docs/ (unchanged) and writes the README's "pictures" section from what the
runs saved (sizes, forecast facts, held-out scores).

    .venv/bin/python docs/make_pictures.py

Stages whose results are already there and current are reused (training
says so and stops), so running it again after a change to the plots only
redraws. Training the 4-minute song takes a few minutes on 2 cores. The
settings below can be given on the command line (``--help`` lists them).
"""
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import settings  # noqa: E402
from dae import audio, cli, config, docs, layout, plotting, store, synth  # noqa: E402

DATA_DIR, OUTPUT_DIR = ROOT / "data", ROOT / "outputs"
DOCS = ROOT / "docs"
README = ROOT / "README.md"
DEMO_SECTIONS = "16,32"      # the demo's sections start at 16 s and 32 s (dae.synth.demo_song)
LONG_SONG = "synth4min"      # data/synth4min.wav: dae.synth.song(LONG_SEED, LONG_SECONDS)
LONG_SEED = 4
LONG_SECONDS = 240.0
DEMO_STAGES = ("train_latent_mlp.py", "train_latent_lstm.py", "forecast_knn.py", "forecast_mlp.py",
               "forecast_lstm.py")
LONG_STAGES = ("forecast_knn.py",)


@dataclass(frozen=True)
class Pictures(config.Settings):
    """The script's settings; `cli.parse(Pictures, globals())` takes their defaults from the constants above."""
    demo_sections: str = config.setting(DEMO_SECTIONS, "the demo's sections' start times (s), given to "
                                                       "embed_audio.py --sections")
    long_song: str = config.setting(LONG_SONG, "the long song's name: data/<LONG_SONG>.wav is synthesised")
    long_seed: int = config.setting(LONG_SEED, "the long song's seed (dae.synth.song)", least=0, most=2 ** 32 - 1)
    long_seconds: float = config.setting(LONG_SECONDS, "the long song's length", unit="s", least=0.0, above=True)


def run(script, *args):
    """Run a stage script from the repository root; stop with its message if it fails."""
    cmd = [sys.executable, str(ROOT / script), *map(str, args), "--data-dir", DATA_DIR, "--output-dir", OUTPUT_DIR]
    print("$ " + " ".join(map(str, cmd[1:])), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{script} failed:\n{proc.stderr.strip()}")
    return proc.stdout


def song_pictures(song, embed_args, stages):
    """Every stage for one song; returns its run paths."""
    run("save_dataset.py", "--song", song)
    run("train_model.py", "--song", song, "--verbose", 0)
    run("embed_audio.py", "--song", song, *embed_args)
    for script in stages:
        run(script, "--song", song)
    return run_paths(song)


def run_paths(song):
    """The paths of the run of `song` that the stage scripts made with settings.py's settings."""
    return layout.run_paths(config.Run.from_constants(settings, song=song, data_dir=str(DATA_DIR),
                                                      output_dir=str(OUTPUT_DIR)))


def copy_png(src, name):
    """Copy a PNG into docs/ (atomically, colours untouched); returns its size in bytes."""
    target = DOCS / name
    with store.atomic_path(target) as tmp:
        shutil.copyfile(src, tmp)
    return target.stat().st_size


def forecast_facts(paths, method):
    """The saved forecast of `method` (the newest) and its sidecar."""
    data = max(paths.run_dir.glob(f"forecast_{method}_ic*.npz"), key=lambda p: p.stat().st_mtime)
    return data, json.loads(layout.sidecar_path(data).read_text())


def main():
    cfg = cli.parse(Pictures, globals())
    audio.write_wav(DATA_DIR / f"{cfg.long_song}.wav", synth.song(cfg.long_seed, cfg.long_seconds), synth.SR,
                    "int16")
    demo = song_pictures("demo", ("--sections", cfg.demo_sections), DEMO_STAGES)
    long = song_pictures(cfg.long_song, ("--find-sections", "false"), LONG_STAGES)   # 30 s blocks
    sizes, lines = {}, []
    sizes["demo_trajectory_R-F.png"] = copy_png(demo.trajectory_png, "demo_trajectory_R-F.png")
    sizes["demo_trajectory_sections_R-F.png"] = copy_png(demo.trajectory_sections_png,
                                                         "demo_trajectory_sections_R-F.png")
    sizes["long_trajectory_R-F.png"] = copy_png(long.trajectory_png, "long_trajectory_R-F.png")
    sizes["long_trajectory_sections_R-F.png"] = copy_png(long.trajectory_sections_png,
                                                         "long_trajectory_sections_R-F.png")
    forecasts = {}
    for tag, paths, method in (("demo", demo, "knn"), ("demo", demo, "lstm"), ("long", long, "knn")):
        data, meta = forecast_facts(paths, method)
        name = f"{tag}_forecast_{method}.png"
        sizes[name] = copy_png(paths.output_dir / data.with_suffix(".png").name, name)
        forecasts[name] = meta
    emb = {tag: json.loads(layout.sidecar_path(p.embedding).read_text()) for tag, p in (("demo", demo),
                                                                                       ("long", long))}
    latent = {k: json.loads(layout.sidecar_path(demo.latent_model(k)).read_text()) for k in ("mlp", "lstm")}

    def forecast_caption(name):
        m = forecasts[name]
        out = (f"{m['kind'].split()[0].upper()} forecast, {m['steps']} steps from index {m['initial_condition']}, "
               f"beside the true continuation ({m['truth_steps']} steps); ")
        if m["first_step_outside_the_frame"] is None:
            out += f"it stays inside the frame (the path's range + {plotting.PAD:.0%})"
        else:
            out += (f"it leaves the frame (the path's range + {plotting.PAD:.0%}) at step "
                    f"{m['first_step_outside_the_frame']}, {m['steps_outside_the_frame']} steps outside, reaching {m['reach']:.3g}x the path's "
                    "range: cut at the frame")
        return out + (f". **Flagged:** {m['flag']}" if m.get("flag") else "")

    def scores(kind):
        m = latent[kind]
        h, p = m["held_out"], m["persistence"]
        verdict = f"**flagged: {m['worse_than_persistence']}**" if m["worse_than_persistence"] else \
            "better than persistence on both"
        return (f"latent {kind.upper()}: held-out MSE {h['mse']:.3g} (persistence {p['mse']:.3g}), mean cosine "
                f"{h['cosine']:.3f} (persistence {p['cosine']:.3f}): {verdict}")

    d, g = emb["demo"], emb["long"]
    lines += [
        f"Written by `docs/make_pictures.py` from one run of the pipeline (R-F, 0.5 s window, seed "
        f"{d['settings']['SEED']}); the pictures in `docs/` are its PNGs, {sum(sizes.values()) / 1e6:.2f} MB "
        "together.",
        "",
        f"![The demo, one section at a time](docs/demo_trajectory_sections_R-F.png)",
        "",
        f"*The demo ({d['n_points']} points) one section at a time (`--sections {cfg.demo_sections}`): the whole path "
        "faint, the section coloured by time, its first point marked.*",
        "",
        f"![A synthesised 4-minute song](docs/long_trajectory_R-F.png)",
        "",
        f"*A synthesised {cfg.long_seconds / 60:g}-minute song (`dae.synth.song({cfg.long_seed}, "
        f"seconds={cfg.long_seconds:g})`, "
        f"{g['n_points']} points): thin translucent lines in a shuffled order, the start on top; right, the "
        "spectrogram over the coordinates against time, numbered by section, and the strip that maps colour "
        "to time.*",
        "",
        f"![The same song, 30 s at a time](docs/long_trajectory_sections_R-F.png)",
        "",
        "*The same song, 30 s at a time (`--find-sections false`, `SECTION_SECONDS` 30; by default the "
        "sections are found from the music).*",
        "",
        f"![KNN forecast on the demo](docs/demo_forecast_knn.png)",
        "",
        f"*Demo: {forecast_caption('demo_forecast_knn.png')}.*",
        "",
        f"![LSTM forecast on the demo](docs/demo_forecast_lstm.png)",
        "",
        f"*Demo: {forecast_caption('demo_forecast_lstm.png')}.*",
        "",
        f"![KNN forecast on the 4-minute song](docs/long_forecast_knn.png)",
        "",
        f"*4-minute song: {forecast_caption('long_forecast_knn.png')}.*",
        "",
        "Held-out scores of the demo's latent models ("
        + ("five blocks across the song" if latent["mlp"].get("holdout") == "blocks" else "last 20% of the path")
        + "): " + "; ".join(
            scores(k) for k in ("mlp", "lstm")) + ".",
        "",
        "| file | size |",
        "|---|---|",
        *[f"| `docs/{k}` | {v / 1e3:.0f} kB |" for k, v in sizes.items()],
    ]
    spliced = docs.splice(README, "pictures", "\n".join(lines))
    print("copied " + ", ".join(f"{k} ({v / 1e3:.0f} kB)" for k, v in sizes.items())
          + (" and wrote the README's pictures section" if spliced else ""))


if __name__ == "__main__":
    cli.run(main)
