"""One command for every stage of any song (pipeline.py), and the notebook for a song with one run or none."""
import dataclasses
import json
import sys

import pytest

from conftest import ROOT, changing_song, common, run_script, write_song
from dae import layout, provenance

# settings that are not the defaults, so that every stage is seen to get them: the run folder they name
SETTINGS = {"ALPHA": 0.0, "HISTORY": 30, "SEED": 7}
RUN = layout.run_name(0.5, 0.0, 1.0, 0.0, 0.0, 3, 30, 7)
STAGE_KINDS = {"embedding", "encoder", "decoder", "forecaster", "latent mlp", "latent lstm", "knn forecast",
               "mlp forecast", "lstm forecast", "divergence"}
PICTURE_KINDS = {"trajectory plot", "knn forecast plot", "mlp forecast plot", "lstm forecast plot", "player page"}


@pytest.fixture(scope="module")
def song_run(tmp_path_factory):
    """pipeline.py once on a 6 s song: R only (ALPHA 0), 1 epoch, the player page without the video."""
    tmp = tmp_path_factory.mktemp("song")
    data, out = tmp / "data", tmp / "outputs"
    song = write_song(tmp / "tune.wav", changing_song(6.0))
    proc = run_script("pipeline.py", "--song", song, *common(data, out), "--alpha", 0, "--history", 30,
                      "--seed", 7, "--epochs", 1, "--format", "html")
    return song, data, out, proc


def test_one_command_runs_every_stage_with_the_same_settings_on_that_song(song_run):
    song, data, out, proc = song_run
    assert proc.returncode == 0, proc.stderr
    assert [d.name for d in (data / "tune" / "runs").iterdir()] == [RUN]    # every stage used that one run
    paths = layout.Paths(song, data, out, run=RUN)
    audio = provenance.file_hash(song)
    kinds = set()
    for side in sorted((data / "tune" / "runs" / RUN).rglob("*.json")):
        target = side.with_name(side.name[:-len(".json")])
        kind = json.loads(side.read_text())["kind"]
        chain = provenance.check(paths, kind, path=target, need_audio=True)  # the whole chain, down to the audio
        assert chain["spectrogram"]["source_sha256"] == audio, target
        assert {k: chain[kind]["settings"][k] for k in SETTINGS} == SETTINGS, target
        kinds.add(kind)
    assert kinds == STAGE_KINDS
    embedded = provenance.check(paths, "embedding")["embedding"]["sha256"]
    pictures = set()
    for side in sorted((out / "tune" / RUN).glob("*.json")):
        meta = json.loads(side.read_text())
        assert meta["sha256"] == provenance.file_hash(side.with_name(side.name[:-len(".json")])), side
        assert meta["run"] == RUN and {k: meta["settings"][k] for k in SETTINGS} == SETTINGS, side
        if "embedding" in meta["inputs"]:
            assert meta["inputs"]["embedding"]["sha256"] == embedded, side
        pictures.add(meta["kind"])
    assert pictures == PICTURE_KINDS
    assert not (out / "tune" / RUN / "trajectory.mp4").exists()                 # --format html: no video
    assert (out / "tune" / "divergence.png").stat().st_size > 10_000            # the notebook, for this song


def test_training_progress_shows_the_run_and_not_the_terms_of_weight_0(song_run):
    song, data, out, proc = song_run
    lines = [l for l in proc.stdout.splitlines() if l.startswith("epoch ") and "reconstruction" in l]   # training's
    assert len(lines) == 1 and lines[0].startswith("epoch 1/1  step ") and " run 100% " in lines[0]
    assert "elapsed" in lines[0] and "left" in lines[0]
    final = next(l for l in proc.stdout.splitlines() if l.startswith("final "))
    for line in (lines[0], final):                  # R: ALPHA = GAMMA = DELTA = 0, so only the reconstruction
        assert "= reconstruction " in line
        assert not any(term in line for term in ("forecasting", "off_centre", "curvature"))


def test_the_notebook_with_one_run_says_what_to_run_for_the_comparison(song_run):
    song, data, out, proc = song_run
    assert "R vs R-F picture skipped: no R and R-F runs of tune" in proc.stdout and "pipeline.py" in proc.stdout
    assert not (out / "tune" / "smoothness_R_vs_R-F.png").exists()
    assert "Traceback" not in proc.stdout + proc.stderr


def test_the_notebook_for_a_song_with_no_run_ends_in_one_line(tmp_path):
    import subprocess
    p = subprocess.run([sys.executable, "-m", "dae.notebook", ROOT / "divergence_plots.ipynb", "--song", "nosuch",
                        *common(tmp_path / "data", tmp_path / "outputs")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [p.stderr.strip()] and "Traceback" not in p.stdout + p.stderr
    assert p.stderr.startswith("error: no divergence results for nosuch") and "pipeline.py" in p.stderr


def test_the_pipeline_gives_r_f_and_r_the_same_settings_and_each_stage_its_own():
    import pipeline
    from dae import config
    cfg = config.Pipeline(song="a/b.wav", window_seconds=2.0, alpha=0.01, epochs=3, format="html",
                          compare_r=True, notebook=True)
    steps = pipeline.steps(cfg)
    names = [title.split(" ")[0] for title, _, _ in steps]
    scripts = [pipeline.name_of(script) for script, _, _ in pipeline.RUN_STAGES]
    assert names == ["save_dataset.py", *scripts, *scripts, "divergence_plots.ipynb"]
    for title, _, stage_cfg in steps:
        assert stage_cfg.song == "a/b.wav"
        if title != "divergence_plots.ipynb":
            assert stage_cfg.window_seconds == 2.0
        assert (getattr(stage_cfg, "epochs", None) == 3) == title.startswith("train_model.py")
        assert (getattr(stage_cfg, "format", None) == "html") == title.startswith("play_embedding.py")
    alphas = [stage_cfg.alpha for _, _, stage_cfg in steps[1:-1]]
    assert alphas == [0.01] * 9 + [0.0] * 9                                   # R-F, then R
    played = [c.format for t, _, c in pipeline.steps(dataclasses.replace(cfg, format="mp4")) if "play_emb" in t]
    assert played == ["mp4", "html"]                       # R-F's video; R, beside it, its player page (R_FORMAT)
    assert len(pipeline.steps(dataclasses.replace(cfg, compare_r=False, notebook=False))) == 1 + 9
    assert len(pipeline.steps(dataclasses.replace(cfg, alpha=0.0))) == 1 + 9 + 1   # R asked: R once


def test_a_stage_that_fails_stops_the_pipeline_with_its_one_line(tmp_path):
    p = run_script("pipeline.py", "--song", tmp_path / "nowhere.wav", *common(tmp_path / "d", tmp_path / "o"))
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1 and "not found" in p.stderr
    assert p.stdout.splitlines() == ["== [1/20] save_dataset.py"]          # nothing after the failed stage
    p = run_script("pipeline.py", "--format", "gif", *common(tmp_path / "d", tmp_path / "o"))
    assert p.returncode == 1 and p.stderr.strip() == "error: FORMAT='gif' is not one of mp4, html, both"
    assert p.stdout == ""                                                  # refused before any stage ran


def _files(*folders):
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for folder in folders for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_a_rerun_keeps_what_is_up_to_date_and_reruns_only_what_a_changed_setting_shapes(song_run):
    song, data, out, proc = song_run
    assert proc.returncode == 0, proc.stderr
    args = ("--song", song, *common(data, out), "--history", 30, "--seed", 7, "--epochs", 1, "--format", "html")
    import pipeline
    before = {p: v for p, v in _files(data).items() if ".lock" not in p.name}
    again = run_script("pipeline.py", *args, "--alpha", 0)
    assert again.returncode == 0, again.stderr
    stages = pipeline.stage_lines(again.stdout)
    assert len(stages) == 11                                        # stage 1, nine of the run, the notebook
    for title, lines in stages.items():                             # the notebook too: it read the same results
        assert len(lines) == 1 and lines[0].endswith("up to date (same inputs, settings and code), skipped"), \
            (title, lines)
    assert {p: v for p, v in _files(data).items() if ".lock" not in p.name} == before   # nothing was rewritten
    # another forecasting weight: its run is made, the R run and the spectrogram are kept
    changed = run_script("pipeline.py", *args, "--alpha", 0.002)     # R-F and R side by side
    assert changed.returncode == 0, changed.stderr
    stages = pipeline.stage_lines(changed.stdout)
    new_run = layout.run_name(0.5, 0.002, 1.0, 0.0, 0.0, 3, 30, 7)
    for title, lines in stages.items():
        kept = any(line.endswith("skipped") for line in lines)
        assert kept == (title == "save_dataset.py" or f"({RUN})" in title), (title, lines)
    assert sum(f"({new_run})" in title for title in stages) == 9
