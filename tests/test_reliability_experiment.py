"""The experiment reuses a stage's output only when it was made with the trial's settings from the
trial's inputs, checked byte for byte; otherwise it recomputes, or fails the trial in one line."""
import json

import numpy as np
import pytest

from conftest import SR, run_script, write_song
from dae import store, synth

RUN = "w0.5s_R_a0_b1_g0_d0_z3_l45_s1"
KEY = "song1__R__w0.5_z3_s1_e1"
METRICS = ("delta_x_1", "delta_x_5", "skill_x_1", "skill_x_5", "growth_x", "delta_o_1", "turning_angle")


@pytest.fixture(scope="module")
def tried(tmp_path_factory):
    """One trial (song1, R, seed 1, 1 epoch) in one process; then the stage files are changed
    under it in three ways, the saved trial forgotten each time and the same command run again."""
    tmp = tmp_path_factory.mktemp("reuse")
    (tmp / "songs").mkdir()
    song = write_song(tmp / "songs" / "song1.wav", synth.song(1, 8.0, SR))
    dirs = ["--data-dir", tmp / "data", "--output-dir", tmp / "outputs"]
    command = ["experiment.py", "--songs", tmp / "songs", *dirs, "--variants", "R", "--seeds", "1",
               "--epochs", "1", "--name", "reuse", "--use-ray", "false"]
    trial = tmp / "outputs" / "experiments" / "reuse" / "trials" / f"{KEY}.json"
    run_dir = tmp / "data" / "song1" / "runs" / RUN
    stage = ["--song", song, "--alpha", 0, "--seed", 1, *dirs]
    out = {"tmp": tmp, "run_dir": run_dir}

    def again(name):
        trial.unlink()
        out[name] = run_script(*command)
        out[name + "_trial"] = json.loads(trial.read_text())

    out["first"] = run_script(*command)
    out["first_trial"] = json.loads(trial.read_text())
    # 1. divergence.py with other settings, over the file the experiment made (same name: same K, radius)
    out["every3"] = run_script("divergence.py", *stage, "--every", 3)
    again("after_every3")
    # 2. the divergence's bytes replaced with other valid numbers, its record left as it was
    target, = (p for p in run_dir.glob("divergence_k5_x*.npz"))
    with np.load(target) as d:
        arrays = {k: d[k] for k in d.files}
    store.save_npz(target, **(arrays | {"delta": arrays["delta"] * 2}))
    again("after_tamper")
    # 3. the run trained on to 3 epochs with the trial's settings
    out["train3"] = run_script("train_model.py", *stage, "--epochs", 3, "--verbose", 0)
    out["history3"] = (run_dir / "history.csv").read_text()
    again("after_train3")
    out["history_after"] = (run_dir / "history.csv").read_text()
    return out


def test_the_first_trial_runs(tried):
    assert tried["first"].returncode == 0, tried["first"].stderr[-2000:]
    r = tried["first_trial"]
    assert r["status"] == "ok" and {"training", "embedding", "divergence_x", "divergence_o"} <= set(r["computed"])
    assert r["made_from"]["divergence"] == {"K": 5, "EXCLUSION_RADIUS": -1, "N_STEPS": 30, "EVERY": 10,
                                            "FIT_STEPS": 10}
    assert len(list(tried["run_dir"].glob("divergence_k5_x*.npz"))) == 1


def test_a_divergence_made_with_other_settings_is_not_reused(tried):
    assert tried["every3"].returncode == 0, tried["every3"].stderr[-2000:]
    r, first = tried["after_every3_trial"], tried["first_trial"]
    assert tried["after_every3"].returncode == 0, tried["after_every3"].stderr[-2000:]
    assert r["computed"] == ["divergence_x"]                  # the model, embedding and original rule reused
    for col in METRICS:
        assert r[col] == first[col], col
    assert r["n_initial_conditions"] == first["n_initial_conditions"]


def test_a_divergence_whose_bytes_changed_is_not_reused(tried):
    r, first = tried["after_tamper_trial"], tried["first_trial"]
    assert tried["after_tamper"].returncode == 0, tried["after_tamper"].stderr[-2000:]
    assert r["computed"] == ["divergence_x"]
    for col in METRICS:
        assert r[col] == first[col], col


def test_a_model_trained_longer_than_asked_is_not_used_nor_replaced(tried):
    assert tried["train3"].returncode == 0, tried["train3"].stderr[-2000:]
    proc, r = tried["after_train3"], tried["after_train3_trial"]
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "1 of 1 trials failed" in lines[0], proc.stderr
    assert r["status"] == "failed" and "3-epoch model" in r["error"] and "--epochs 3" in r["error"], r
    assert f"FAILED: {r['error']}" in proc.stdout
    assert tried["history_after"] == tried["history3"] and len(tried["history3"].splitlines()) == 4


def test_a_saved_trial_is_not_reused_once_its_song_changed(tried, tmp_path):
    """still_valid: the saved result names the audio's sha256; other audio under the same name is a new trial."""
    from dae.trials import still_valid
    saved = tried["first_trial"]
    song = tried["tmp"] / "songs" / "song1.wav"
    t = {"song": str(song), "settings": saved["settings"], "data_dir": str(tried["tmp"] / "data"),
         "output_dir": str(tried["tmp"] / "outputs")}
    assert still_valid(saved, t, {})
    moved = dict(t, song=str(write_song(tmp_path / "song1.wav", synth.song(2, 8.0, SR))))
    assert not still_valid(dict(saved, source=moved["song"]), moved, {})
    stale = dict(saved, made_from=dict(saved["made_from"], divergence={**saved["made_from"]["divergence"],
                                                                       "EVERY": 3}))
    assert not still_valid(stale, t, {})


def test_pca_is_reused_only_while_its_components_are_the_saved_ones(tmp_path):
    (tmp_path / "songs").mkdir()
    write_song(tmp_path / "songs" / "song1.wav", synth.song(1, 8.0, SR))
    command = ["experiment.py", "--songs", tmp_path / "songs", "--data-dir", tmp_path / "data",
               "--output-dir", tmp_path / "outputs", "--variants", "PCA", "--seeds", "1", "--name", "pca",
               "--use-ray", "false"]
    trial = tmp_path / "outputs" / "experiments" / "pca" / "trials" / "song1__PCA__w0.5_z3_s1_e-.json"
    results = []
    for tamper in (False, False, True):
        if tamper:           # other components under the old record: not the ones the embedding came from
            target = tmp_path / "data" / "song1" / "runs" / "w0.5s_PCA_z3_s1" / "pca.npz"
            with np.load(target) as d:
                arrays = {k: d[k] for k in d.files}
            store.save_npz(target, **(arrays | {"mean": arrays["mean"] + 0.5}))
        if trial.exists():
            trial.unlink()
        proc = run_script(*command)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results.append(json.loads(trial.read_text()))
    assert results[0]["computed"][0] == "pca" and results[1]["computed"] == []
    assert results[2]["computed"][0] == "pca"
    assert results[2]["bce"] == results[0]["bce"] and results[2]["turning_angle"] == results[0]["turning_angle"]


@pytest.mark.parametrize("blocked", ["outputs", "data", "outputs/experiments/x"])
def test_a_file_where_the_experiment_needs_a_folder_is_one_line_before_any_work(tmp_path, blocked):
    in_the_way = tmp_path / blocked
    in_the_way.parent.mkdir(parents=True, exist_ok=True)
    in_the_way.write_text("mine")
    proc = run_script("experiment.py", "--songs", "synth-1", "--variants", "PCA", "--seeds", "1", "--name", "x",
                      "--use-ray", "false", "--data-dir", tmp_path / "data", "--output-dir", tmp_path / "outputs",
                      "--synth-seconds", 8)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert f"{in_the_way} is a file, not a folder" in lines[0]
    assert in_the_way.read_text() == "mine"
    made = set(tmp_path.rglob("*"))                          # nothing but the file and its folders
    assert made == {in_the_way, *(p for p in in_the_way.parents if tmp_path in p.parents)}
