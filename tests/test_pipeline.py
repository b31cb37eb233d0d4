"""The scripts end to end, their settings, and their behaviour on bad input."""
import json

import numpy as np
import pytest

from conftest import changing_song, run_script, write_song


def common(data, out):
    return ["--data-dir", data, "--output-dir", out]


def snapshot(root):
    """Every file under root with its bytes, to prove nothing was lost or half-written."""
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_line_error(proc, *words):
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """save_dataset -> train (R-F and R) -> embed on a short synthetic song, through the CLI."""
    tmp = tmp_path_factory.mktemp("pipe")
    data, out = tmp / "data", tmp / "outputs"
    song = write_song(tmp / "groove.wav", changing_song(10.0))
    steps = [("save_dataset.py",), ("train_model.py", "--epochs", 1, "--verbose", 0),
             ("train_model.py", "--epochs", 1, "--verbose", 0, "--alpha", 0),
             ("embed_audio.py",), ("embed_audio.py", "--alpha", 0)]
    procs = [run_script(s[0], "--song", song, *common(data, out), *s[1:]) for s in steps]
    return tmp, data, out, song, procs


def test_pipeline_runs_and_keeps_r_and_rf_side_by_side(pipeline):
    tmp, data, out, song, procs = pipeline
    for p in procs:
        assert p.returncode == 0, p.stderr
    runs = sorted(d.name for d in (data / "groove" / "runs").iterdir())
    assert len(runs) == 2 and any("_R-F_" in r for r in runs) and any("_R_" in r for r in runs)
    for r in runs:
        run = data / "groove" / "runs" / r
        for f in ("encoder.keras", "decoder.keras", "forecaster.keras", "history.csv", "embedding.npz"):
            assert (run / f).exists(), f
        pics = out / "groove" / r
        assert (pics / "trajectory.png").stat().st_size > 10_000
        assert "t = %{customdata" in (pics / "trajectory.html").read_text()
    assert (out / "groove" / "spectrogram.png").exists()


def test_sidecars_record_settings_versions_and_times(pipeline):
    tmp, data, out, song, procs = pipeline
    run = next(d for d in (data / "groove" / "runs").iterdir() if "_R_" in d.name)
    meta = json.loads((run / "encoder.keras.json").read_text())
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
    assert p.returncode == 2
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
    assert not list(tmp_path.rglob(".tmp*")) and not list(runs.glob("*/encoder.keras"))
    again = run_script("train_model.py", *args, "--epochs", done + 1, "--verbose", 0)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stdout and f"after epoch {done} of {done + 1}" in again.stdout
    rows = ckpt.with_name("history.csv").read_text().splitlines()
    assert len(rows) == done + 2 and rows[:done + 1] == history
