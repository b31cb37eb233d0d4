"""The scripts end to end, their settings, and their behaviour on bad input."""
import json

import numpy as np
import pytest

from conftest import changing_song, common, run_script, write_song


def snapshot(root):
    """Every file under root with its bytes, to prove nothing was lost or half-written
    (run-folder lock files, which record who last wrote there, aside)."""
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}


def one_line_error(proc, *words):
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_pipeline_runs_and_keeps_r_and_rf_side_by_side(pipeline):
    from dae import embedding, layout, provenance
    tmp, data, out, song, procs = pipeline
    for p in procs:
        assert p.returncode == 0, p.stderr
    runs = sorted(d.name for d in (data / "groove" / "runs").iterdir())
    assert len(runs) == 2 and any("_R-F_" in r for r in runs) and any("_R_" in r for r in runs)
    spec = json.loads((data / "groove" / "spectrogram.npz.json").read_text())
    paths = {r: layout.Paths(song, data, out, run=r) for r in runs}
    Z = {}
    for r, p in paths.items():
        emb = embedding.load(p)                   # the whole chain checks out: audio, spectrogram, model, embedding
        chain = emb["chain"]
        assert {chain[k]["model_id"] for k in provenance.MODEL_PARTS} == {chain["encoder"]["model_id"]}
        assert chain["encoder"]["run"] == r and emb["meta"]["inputs"]["encoder"]["sha256"] == chain["encoder"]["sha256"]
        Z[r] = emb["Z"]
        assert Z[r].shape == (spec["n_time"] - spec["window_width"] + 1, 3) and np.all(np.isfinite(Z[r]))
        assert np.ptp(Z[r], axis=0).min() > 0     # a path, not a point
        pics = out / "groove" / r
        assert (pics / "trajectory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (pics / "trajectory.png").stat().st_size > 10_000
        page = (pics / "trajectory.html").read_text()
        assert "t = %{customdata" in page and 'src="../../plotly.min.js"' in page    # the shared copy
        assert (out / "plotly.min.js").stat().st_size > 1_000_000 and len(page) < 1_000_000
        assert not (pics / "trajectory_sections.png").exists()    # a 10 s song is one 30 s section
    assert not np.allclose(*Z.values())           # R and R-F are two models, not one file twice
    assert (out / "groove" / "spectrogram.png").read_bytes()[:4] == b"\x89PNG"


def test_sidecars_record_settings_versions_and_times(pipeline):
    tmp, data, out, song, procs = pipeline
    run = next(d for d in (data / "groove" / "runs").iterdir() if "_R_" in d.name)
    meta = json.loads((run / "model" / "encoder.keras.json").read_text())
    assert meta["settings"]["ALPHA"] == 0 and meta["architecture"] == "R"
    assert meta["settings"]["SONG"] == str(song) and "tensorflow-cpu" in meta["versions"]
    emb = np.load(run / "embedding.npz")
    Z, start, end = emb["Z"], emb["t_start"], emb["t_end"]
    spec = json.loads((data / "groove" / "spectrogram.npz.json").read_text())
    assert len(Z) == spec["n_time"] - spec["window_width"] + 1
    np.testing.assert_allclose(end - start, spec["window_width"] * 1024 / spec["sample_rate"])
    assert end[-1] <= spec["duration_s"] + 1e-9


def test_help_lists_every_setting_with_its_default():
    p = run_script("train_model.py", "--help")
    assert p.returncode == 0
    for flag in ("--song", "--window-seconds", "--alpha", "--latent-dim", "--seed", "--epochs", "--resume"):
        assert flag in p.stdout
    assert "default: 0.001" in p.stdout and "forecasting-loss weight" in p.stdout


def test_unknown_setting_is_an_error():
    p = run_script("embed_audio.py", "--latent-dims", "3")
    assert p.returncode == 1
    assert "unrecognized arguments: --latent-dims" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_missing_audio(tmp_path):
    p = run_script("save_dataset.py", "--song", tmp_path / "nowhere.wav", *common(tmp_path / "d", tmp_path / "o"))
    one_line_error(p, "not found")


def test_missing_song_name(tmp_path):
    p = run_script("save_dataset.py", "--song", "mysong", *common(tmp_path / "d", tmp_path / "o"))
    one_line_error(p, "mysong", "--song")


def test_corrupt_audio_leaves_the_previous_dataset_untouched(pipeline, tmp_path):
    _, _, _, song, _ = pipeline
    data, out = tmp_path / "data", tmp_path / "out"
    target = tmp_path / "groove.wav"
    target.write_bytes(song.read_bytes())
    assert run_script("save_dataset.py", "--song", target, *common(data, out)).returncode == 0
    before = snapshot(tmp_path)
    target.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
    after_write = snapshot(tmp_path)
    p = run_script("save_dataset.py", "--song", target, *common(data, out))
    one_line_error(p, "not a readable WAV")
    assert snapshot(tmp_path) == after_write and len(after_write) == len(before)


def test_non_audio_file(tmp_path):
    f = tmp_path / "notes.mp3"
    f.write_text("shopping list\n" * 100)
    one_line_error(run_script("save_dataset.py", "--song", f, *common(tmp_path / "d", tmp_path / "o")),
                   "ffmpeg")


def test_silent_clip(tmp_path):
    f = write_song(tmp_path / "quiet.wav", np.zeros(22050 * 5))
    one_line_error(run_script("save_dataset.py", "--song", f, *common(tmp_path / "d", tmp_path / "o")), "silent")
    assert not (tmp_path / "d" / "quiet" / "spectrogram.npz").exists()


def test_clip_shorter_than_a_window_plus_history(tmp_path):
    f = write_song(tmp_path / "short.wav", changing_song(2.5))
    args = ("--song", f, *common(tmp_path / "d", tmp_path / "o"))
    assert run_script("save_dataset.py", *args).returncode == 0
    one_line_error(run_script("train_model.py", *args), "needs", "longer clip")
    assert not (tmp_path / "d" / "short" / "runs").exists() or not any((tmp_path / "d" / "short" / "runs").rglob("*.keras"))


def test_train_before_save_dataset(tmp_path):
    f = write_song(tmp_path / "fresh.wav", changing_song(6.0))
    one_line_error(run_script("train_model.py", "--song", f, *common(tmp_path / "d", tmp_path / "o")),
                   "save_dataset.py")


def test_embed_before_train(pipeline, tmp_path):
    _, data, out, song, _ = pipeline
    one_line_error(run_script("embed_audio.py", "--song", song, "--latent-dim", 12, *common(data, out)),
                   "train_model.py")


def test_no_temporary_files_are_left_behind(pipeline):
    tmp, data, out, *_ = pipeline
    assert not [p for p in tmp.rglob(".tmp*")]


def test_interrupted_training_resumes_and_loses_nothing(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    from conftest import ROOT
    song = write_song(tmp_path / "long.wav", changing_song(12.0))
    args = ["--song", song, *common(tmp_path / "d", tmp_path / "o")]
    assert run_script("save_dataset.py", *args).returncode == 0
    proc = subprocess.Popen([sys.executable, str(ROOT / "train_model.py"), *map(str, args), "--epochs", "30",
                             "--verbose", "0"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = tmp_path / "d" / "long" / "runs"
    deadline = time.time() + 240
    while time.time() < deadline and not list(runs.glob("*/checkpoint.npz")):
        time.sleep(0.2)
    ckpt = next(runs.glob("*/checkpoint.npz"))
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err.strip().splitlines()[-1]
    history = ckpt.with_name("history.csv").read_text().splitlines()
    done = len(history) - 1
    assert 1 <= done < 30
    assert not list(tmp_path.rglob(".tmp*")) and not list(runs.glob("*/model*"))   # no model, not half a one
    again = run_script("train_model.py", *args, "--epochs", done + 1, "--verbose", 0)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stdout and f"after epoch {done} of {done + 1}" in again.stdout
    rows = ckpt.with_name("history.csv").read_text().splitlines()
    assert len(rows) == done + 2 and rows[:done + 1] == history


# ---------------------------------------------------------------- stages 4-7

@pytest.fixture(scope="module")
def stages(pipeline):
    """Stages 4-7 through the CLI on the pipeline's song: everything for R-F, divergence for R too."""
    tmp, data, out, song, _ = pipeline
    args = ("--song", song, *common(data, out))
    steps = [("train_latent_mlp.py",), ("train_latent_lstm.py",), ("forecast_knn.py", "--initial-condition", 60),
             ("forecast_mlp.py", "--initial-condition", 60), ("forecast_lstm.py", "--initial-condition", 60),
             ("divergence.py",), ("divergence.py", "--alpha", 0),
             ("play_embedding.py", "--width", 320, "--height", 180, "--fps", 10, "--progress", "false")]
    procs = {" ".join(map(str, s)): run_script(s[0], *args, *s[1:]) for s in steps}
    return tmp, data, out, song, procs


def _run_dir(data, tag):
    return next(d for d in (data / "groove" / "runs").iterdir() if f"_{tag}_" in d.name)


def test_stages_4_to_7_run_and_save_with_sidecars(stages):
    from dae import layout, provenance
    tmp, data, out, song, procs = stages
    for name, p in procs.items():
        assert p.returncode == 0, (name, p.stderr)
    run = _run_dir(data, "R-F")
    paths = layout.Paths(song, data, out, run=run.name)
    emb_sha = provenance.check(paths, "embedding")["embedding"]["sha256"]
    Z = np.load(run / "embedding.npz")["Z"]
    for kind, f in (("latent mlp", "latent_mlp.keras"), ("latent lstm", "latent_lstm.keras"),
                    ("knn forecast", "forecast_knn_ic60.npz"), ("mlp forecast", "forecast_mlp_ic60.npz"),
                    ("lstm forecast", "forecast_lstm_ic60.npz"), ("divergence", "divergence_k5_x12.npz")):
        chain = provenance.check(paths, kind, path=run / f)  # each checks out against the current embedding
        assert chain[kind]["inputs"]["embedding"]["sha256"] == emb_sha, f
    for method in ("mlp", "lstm"):                           # the latent forecasts name the model they rolled
        meta = provenance.check(paths, f"{method} forecast", path=run / f"forecast_{method}_ic60.npz")
        assert meta[f"{method} forecast"]["inputs"][f"latent {method}"]["sha256"] == \
            provenance.file_hash(run / f"latent_{method}.keras")
    for method in ("knn", "mlp", "lstm"):                    # one unit for all three: the path scaled to [0, 1]
        f = np.load(run / f"forecast_{method}_ic60.npz")
        assert f["forecast"].shape == (201, 3) and np.all(np.isfinite(f["forecast"]))
        assert str(f["units"]) == "the path scaled per dimension to [0, 1] by its min and max"
        np.testing.assert_allclose(f["Z"].min(0), 0, atol=1e-12)
        np.testing.assert_allclose(f["Z"].max(0), 1, atol=1e-12)
        np.testing.assert_allclose(f["lo"] + f["Z"] * (f["hi"] - f["lo"]), Z, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(f["forecast"][0], f["Z"][60], atol=1e-6)  # starts at the initial condition
        np.testing.assert_array_equal(f["truth"], f["Z"][60:261])             # the true continuation
        assert np.abs(np.diff(f["forecast"], axis=0)).max() > 0               # it moves
        page = (out / "groove" / run.name / f"forecast_{method}_ic60.html").read_text()
        assert 'src="../../plotly.min.js"' in page and "true continuation" in page
        meta = json.loads((run / f"forecast_{method}_ic60.npz.json").read_text())
        assert meta["units"] == str(f["units"]) and meta["truth_steps"] == min(200, len(Z) - 61)
    video = json.loads((out / "groove" / run.name / "trajectory.mp4.json").read_text())
    assert video["inputs"]["embedding"]["sha256"] == emb_sha


def test_latent_scores_are_saved_with_a_persistence_baseline(stages):
    tmp, data, out, song, procs = stages
    meta = json.loads((_run_dir(data, "R-F") / "latent_lstm.keras.json").read_text())
    assert set(meta["held_out"]) == {"mse", "cosine"} and set(meta["persistence"]) == {"mse", "cosine"}
    assert meta["test_first_index"] - meta["history"] + 1 >= meta["split_index"]
    assert "persistence" in procs["train_latent_lstm.py"].stdout
    for kind in ("mlp", "lstm"):                             # a model worse than persistence says so, everywhere
        meta = json.loads((_run_dir(data, "R-F") / f"latent_{kind}.keras.json").read_text())
        worse = meta["held_out"]["mse"] > meta["persistence"]["mse"] or \
            meta["held_out"]["cosine"] < meta["persistence"]["cosine"]
        assert bool(meta["worse_than_persistence"]) == worse
        assert ("WARNING: the latent" in procs[f"train_latent_{kind}.py"].stdout) == worse
        forecast = json.loads((_run_dir(data, "R-F") / f"forecast_{kind}_ic60.npz.json").read_text())
        assert forecast.get("flag", "") == meta["worse_than_persistence"]


def test_divergence_saves_curves_statistics_and_rates(stages):
    from dae import layout, stages as stage_lib
    from dae.forecast import rollout
    tmp, data, out, song, procs = stages
    run = _run_dir(data, "R")
    d = np.load(run / "divergence_k5_x12.npz")
    delta, origins = d["delta"], d["origins"]
    assert delta.shape == (len(origins), 31) and np.all(d["count"] == len(origins)) and len(origins) > 2
    assert np.all(delta[:, 0] == 0) and np.all(delta >= 0)          # every forecast starts on the path
    assert np.all(delta[:, 1:].mean(0) > 0)                        # and leaves it
    assert np.all(origins + 30 < len(np.load(run / "embedding.npz")["Z"]))   # the truth exists for every step
    # each saved curve is what a single KNN rollout from its origin gives (the batched code agrees with it)
    paths = layout.Paths(song, data, out, run=run.name)
    Z, Zs, meta, field, rule = stage_lib.knn_setup(paths, 5, -1, False)
    for row in (0, len(origins) // 2, len(origins) - 1):
        o = int(origins[row])
        path = rollout(field, Zs[o], 30, origin=o)
        np.testing.assert_allclose(delta[row], np.linalg.norm(path - Zs[o:o + 31], axis=1), rtol=1e-9, atol=1e-12)
    meta = json.loads((run / "divergence_k5_x12.npz.json").read_text())
    assert meta["exclusion_radius"] == 12 and meta["rule"] == "exclusion"     # the window's width, 0.5 s at 22050 Hz
    assert meta["growth_per_second"] == pytest.approx(meta["growth_per_step"] * 22050 / 1024)
    assert 0 < meta["turning_angle_deg"] < 180
    assert "per second" in procs["divergence.py --alpha 0"].stdout


def test_script_video_lasts_as_long_as_the_song(stages):
    import imageio_ffmpeg
    tmp, data, out, song, procs = stages
    n, secs = imageio_ffmpeg.count_frames_and_secs(str(out / "groove" / _run_dir(data, "R-F").name / "trajectory.mp4"))
    assert n == 100 and abs(secs - 10.0) <= 0.1


def test_notebook_executes_and_saves_its_figures(stages):
    from conftest import ROOT
    from dae.notebook import execute
    tmp, data, out, song, procs = stages
    printed = execute(ROOT / "divergence_plots.ipynb", {"SONG": str(song), "DATA_DIR": str(data),
                                                        "OUTPUT_DIR": str(out)})
    assert (out / "groove" / "divergence.png").stat().st_size > 10_000
    assert (out / "groove" / "smoothness_R_vs_R-F.png").exists()
    assert "turning angle" in printed and "R-F" in printed


def test_forecast_for_a_run_that_does_not_exist(stages):
    tmp, data, out, song, procs = stages
    p = run_script("forecast_knn.py", "--song", song, "--latent-dim", 7, *common(data, out))
    one_line_error(p, "embed_audio.py")
    p = run_script("divergence.py", "--song", "nosuchsong", *common(data, out))
    one_line_error(p, "embed_audio.py")


def test_initial_condition_out_of_range(stages):
    tmp, data, out, song, procs = stages
    before = snapshot(data)
    for script in ("forecast_knn.py", "forecast_mlp.py", "forecast_lstm.py"):
        p = run_script(script, "--song", song, "--initial-condition", 100000, *common(data, out))
        one_line_error(p, "INITIAL_CONDITION=100000", "out of range")
    p = run_script("forecast_lstm.py", "--song", song, "--initial-condition", 5, *common(data, out))
    one_line_error(p, "choose an index in 19..")
    assert snapshot(data) == before


def test_too_few_points_for_the_history(tmp_path):
    f = write_song(tmp_path / "tiny.wav", changing_song(2.75))
    args = ("--song", f, *common(tmp_path / "d", tmp_path / "o"))
    for script, extra in (("save_dataset.py", ()), ("train_model.py", ("--epochs", 1, "--verbose", 0)),
                          ("embed_audio.py", ())):
        assert run_script(script, *args, *extra).returncode == 0, script
    one_line_error(run_script("train_latent_lstm.py", *args), "too short")
    one_line_error(run_script("divergence.py", *args, "--n-steps", 45), "too few")


def test_settings_are_checked_at_the_door(tmp_path):
    p = run_script("train_model.py", "--latent-dim", "2.5")
    assert p.returncode == 1 and "expected a whole number" in p.stderr
    f = write_song(tmp_path / "s.wav", changing_song(6.0))
    args = ("--song", f, *common(tmp_path / "d", tmp_path / "o"))
    assert run_script("save_dataset.py", *args).returncode == 0
    one_line_error(run_script("train_model.py", *args, "--latent-dim", 0), "LATENT_DIM=0 must be at least 1")
