"""experiment.py end to end on a real local Ray instance, resuming, failures and bad input."""
import csv
import json
import math
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SR, one_line_error, run_script, write_song
from dae import synth
from dae.report import METRICS

FLAGS = ["--variants", "R,R-F", "--seeds", "1", "--epochs", "1", "--name", "tiny", "--num-cpus", "2"]


def snapshot(root):
    """Every file under root (links followed) with its bytes and modification time."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A tiny grid (2 short songs + 1 corrupt file x R, R-F x 1 seed, 1 epoch) on Ray,
    then the same command again with the corrupt file removed, then once more in
    one process after forgetting one finished trial."""
    tmp = tmp_path_factory.mktemp("exp")
    songs = tmp / "songs"
    songs.mkdir()
    for seed in (1, 2):
        write_song(songs / f"song{seed}.wav", synth.song(seed, 8.0, SR))
    (songs / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(64))
    common = ["--songs", songs, "--data-dir", tmp / "data", "--output-dir", tmp / "outputs"]
    first = run_script("experiment.py", *common, *FLAGS, timeout=900)
    exp = tmp / "outputs" / "experiments" / "tiny"
    after_first = {p.name: json.loads(p.read_text()) for p in (exp / "trials").glob("*.json")}
    first_rows, first_summary = read_csv(exp / "trials.csv"), (exp / "summary.md").read_text()
    (songs / "corrupt.wav").unlink()
    data_before = snapshot(tmp / "data")
    second = run_script("experiment.py", *common, *FLAGS, timeout=900)
    data_after = snapshot(tmp / "data")
    forget = exp / "trials" / "song1__R__w0.5_z3_s1_e1.json"
    forgotten = json.loads(forget.read_text())
    forget.unlink()
    third = run_script("experiment.py", *common, *FLAGS, "--use-ray", "false", timeout=900)
    data_third = snapshot(tmp / "data")
    return dict(tmp=tmp, songs=songs, common=common, exp=exp, first=first, second=second, third=third,
                after_first=after_first, data_before=data_before, data_after=data_after, data_third=data_third,
                forgotten=forgotten, first_rows=first_rows, first_summary=first_summary)


def test_tiny_grid_runs_on_ray_and_a_corrupt_song_fails_only_its_trials(grid):
    first, exp = grid["first"], grid["exp"]
    line = one_line_error(first, "2 of 6 trials failed")
    assert "Ray: local instance with 2 CPUs" in first.stdout
    progress = [ln for ln in first.stdout.splitlines() if ln.startswith("[")]
    assert len(progress) == 6 and progress[-1].startswith("[6/6]") and all("ETA" in p for p in progress)
    failed = [p for p in progress if "FAILED" in p]
    assert len(failed) == 2 and all("corrupt" in p and "corrupt.wav" in p for p in failed), failed
    rows = grid["first_rows"]
    assert len(rows) == 6
    ok = [r for r in rows if r["status"] == "ok"]
    assert sorted((r["song"], r["variant"]) for r in ok) == [
        ("song1", "R"), ("song1", "R-F"), ("song2", "R"), ("song2", "R-F")]
    for r in ok:
        for col, *_ in METRICS:
            assert math.isfinite(float(r[col])), (col, r[col])
        assert 0 < float(r["turning_angle"]) < 180 and 0 < float(r["trustworthiness"]) <= 1
        assert float(r["delta_x_1"]) > 0 and float(r["skill_x_1"]) < 1
    for r in rows:
        if r["status"] != "ok":
            assert r["song"] == "corrupt" and "corrupt.wav" in r["error"] and "\n" not in r["error"]
    # every trial saved on its own as it ended, with its δ curves (31 steps) under both rules
    assert len(grid["after_first"]) == 6
    assert all(r["tf_threads"] == "1" for r in grid["after_first"].values())   # 1 TensorFlow thread per Ray trial
    curves = grid["after_first"]["song2__R-F__w0.5_z3_s1_e1.json"]["curves"]
    assert len(curves["x"]["mean"]) == len(curves["o"]["mean"]) == 31 and curves["x"]["mean"][0] == 0
    # the usual run folders hold the stages' artifacts
    run = grid["tmp"] / "data" / "song1" / "runs" / "w0.5s_R-F_a0.001_b1_g0_d0_z3_l45_s1"
    assert (run / "embedding.npz").exists() and (run / "history.csv").exists()
    assert len(list(run.glob("divergence_k5_*.npz"))) == 2
    summary = grid["first_summary"]
    assert "**R-F vs R:** R-F smoother than R in" in summary and "of 2 pairs" in summary
    assert "failed: `corrupt__R__w0.5_z3_s1_e1`" in summary
    for png in ("delta_curves.png", "turning_angles.png"):
        assert (exp / png).stat().st_size > 20_000
    assert str(exp / "trials.csv") in line


def test_the_same_command_again_recomputes_nothing(grid):
    second = grid["second"]
    assert second.returncode == 0, second.stderr[-2000:]
    assert "4 already done, 0 to run" in second.stdout
    assert "Ray:" not in second.stdout                       # nothing to run: no workers started
    assert grid["data_after"] == grid["data_before"]          # not a byte or a timestamp changed
    rows = read_csv(grid["exp"] / "trials.csv")
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    summary = (grid["exp"] / "summary.md").read_text()
    assert "4 finished, 0 failed" in summary and "failed: `" not in summary


def test_a_forgotten_trial_reuses_every_finished_stage(grid):
    third = grid["third"]
    assert third.returncode == 0, third.stderr[-2000:]
    assert "3 already done, 1 to run" in third.stdout
    assert "song1__R__w0.5_z3_s1_e1: ok" in third.stdout and "(every stage reused)" in third.stdout
    assert grid["data_third"] == grid["data_after"]
    again = json.loads((grid["exp"] / "trials" / "song1__R__w0.5_z3_s1_e1.json").read_text())
    for col in ("turning_angle", "delta_x_1", "delta_o_29", "skill_x_5", "trustworthiness"):
        assert again[col] == grid["forgotten"][col]
    assert again["bce"] == pytest.approx(grid["forgotten"]["bce"], rel=1e-4)   # the same models


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args, words", [
    (["--variants", "R,X:alpha=0+foo=1"], ["variant 'X'", "unknown setting 'FOO'"]),
    (["--variants", "R,Rbig"], ["unknown variant 'Rbig'"]),
    (["--variants", "R,Rfast:alpha=0+learning_rate=0.01"], ["'R' and 'Rfast'", "overwrite"]),
    (["--seeds", "1,x"], ["SEEDS", "'x'"]),
    (["--address", f"127.0.0.1:{free_port()}"], ["no Ray cluster answers at 127.0.0.1:"]),
])
def test_bad_input_is_one_line_and_loses_nothing(grid, args, words):
    outputs = grid["tmp"] / "outputs"
    before = snapshot(outputs), snapshot(grid["tmp"] / "data")
    proc = run_script("experiment.py", *grid["common"], *FLAGS, "--name", "other", *args, timeout=120)
    one_line_error(proc, *words)
    assert (snapshot(outputs), snapshot(grid["tmp"] / "data")) == before


def test_an_empty_folder_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not audio")
    proc = run_script("experiment.py", "--songs", tmp_path / "empty", "--data-dir", tmp_path / "data",
                      "--output-dir", tmp_path / "outputs", timeout=120)
    one_line_error(proc, "has no audio files", str(tmp_path / "empty"))
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "data").exists()


def test_songs_from_a_seed_differ_and_repeat():
    a, b = synth.song(0, 6.0, SR), synth.song(1, 6.0, SR)
    assert a.shape == b.shape == (6 * SR,)
    assert np.array_equal(a, synth.song(0, 6.0, SR))
    assert np.max(np.abs(a)) == pytest.approx(0.9) and not np.allclose(a, b)
    tempos = set()
    for seed in range(6):                                    # different tempos: the onset period differs
        x = synth.song(seed, 8.0, SR)
        env = np.abs(x).reshape(-1, 441).max(1)              # 20 ms envelope
        ac = np.correlate(env - env.mean(), env - env.mean(), "full")[len(env) - 1:]
        tempos.add(int(np.argmax(ac[20:80]) + 20))
    assert len(tempos) >= 3


def test_publish_copies_the_report_and_fills_only_its_readme_section(tmp_path):
    from dae.report import publish
    exp = tmp_path / "outputs" / "experiments" / "x"
    exp.mkdir(parents=True)
    (exp / "summary.md").write_text(
        "# Experiment `x`\n\n4 trials: made up.\n\n## The answer in words\n\n- **R-F vs R:** words.\n\n"
        "## Means per variant\n\n| a |\n\n## R-F vs R: song-level differences (R-F - R)\n\n| b |\n\n"
        "## R-F vs R: seed-pair differences (R-F - R)\n\n| s |\n\n"
        "## R vs PCA: song-level differences (R - PCA)\n\n| c |\n\n## Figures\n\n![delta_curves](delta_curves.png)\n")
    for fig in ("delta_curves", "turning_angles", "unused"):
        (exp / f"{fig}.png").write_bytes(b"png " + fig.encode())
    (tmp_path / "docs").mkdir()
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- begin experiment_x -->\nold\n<!-- end experiment_x -->\nrest\n")
    written = publish(exp, "x", root=tmp_path)
    assert readme in written
    text = readme.read_text()
    assert text.startswith("intro\n<!-- begin experiment_x -->\n4 trials: made up.") and text.endswith("rest\n")
    section = text.split("<!-- begin experiment_x -->")[1]
    assert "#### The answer in words" in section and "#### R-F vs R: song-level" in section
    assert "R vs PCA" not in section and "seed-pair" not in section and "old" not in section
    assert "](docs/experiment_x_delta_curves.png)" in section
    assert (tmp_path / "docs" / "experiment_x_turning_angles.png").read_bytes() == b"png turning_angles"
    assert "](experiment_x_delta_curves.png)" in (tmp_path / "docs" / "experiment_x.md").read_text()
    assert not (tmp_path / "docs" / "experiment_x_unused.png").exists()     # only what a page shows is copied


def test_an_interrupted_experiment_continues_where_it_stopped(grid):
    """Ctrl-C after the first trial: the finished trial is kept, the rerun runs only the rest."""
    args = [sys.executable, str(ROOT / "experiment.py"), *map(str, grid["common"]), "--variants", "R-F",
            "--seeds", "5,6", "--epochs", "1", "--name", "interrupted", "--use-ray", "false"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("[1/4]"):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "interrupted" in err, (proc.returncode, err[-1000:])
    trials = grid["exp"].parent / "interrupted" / "trials"
    done = sorted(p.name for p in trials.glob("*.json"))
    assert len(done) in (1, 2)                 # the first, and the second if it ended before the signal landed
    again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-1000:]
    assert f"{len(done)} already done, {4 - len(done)} to run" in again.stdout
    assert len(list(trials.glob("*.json"))) == 4
