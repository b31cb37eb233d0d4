"""The command line: every bad setting is one line on stderr and exit status 1."""
import dataclasses
from pathlib import Path
from dataclasses import dataclass

import pytest

from conftest import run_script
from dae import cli, config


def script_namespace(**constants):
    """A script's globals: its settings as plain constants (the defaults)."""
    return {"__file__": "script.py", "__doc__": "A script.", **constants}


@dataclass(frozen=True)
class Script(config.Settings):
    """A script with settings of several stages, each declared as its stage declares it."""
    song: str = config.same_as(config.Song, "song")
    alpha: float = config.same_as(config.Run, "alpha")
    epochs: int = config.same_as(config.Training, "epochs")
    seed: int = config.same_as(config.Run, "seed")
    n_steps: int = config.same_as(config.Forecast, "n_steps")
    workers: int = config.same_as(config.Player, "workers")
    width: int = config.same_as(config.Player, "width")
    height: int = config.same_as(config.Player, "height")
    batch_size: int = config.same_as(config.LatentTraining, "batch_size")
    initial_condition: int = config.same_as(config.Forecast, "initial_condition")
    resume: bool = config.same_as(config.Training, "resume")
    degrees_per_second: float = config.same_as(config.Player, "degrees_per_second")


DEFAULTS = dict(SONG="demo", ALPHA=0.001, EPOCHS=0, SEED=1337, N_STEPS=200, WORKERS=0, BATCH_SIZE=4,
                INITIAL_CONDITION=-1, RESUME=True)


def refused(capsys, argv, namespace=None, kind=Script):
    """Parse argv; it must exit 1 with one line on stderr, which is returned."""
    with pytest.raises(SystemExit) as e:
        cli.parse(kind, namespace or script_namespace(**DEFAULTS), argv=argv)
    assert e.value.code == 1
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_good_settings_pass_and_are_set():
    ns = script_namespace(**DEFAULTS)
    values = cli.parse(Script, ns, argv=["--alpha", "0", "--epochs", "3", "--seed", str(2 ** 32 - 1), "--n-steps",
                                         "1e3", "--resume", "false"])
    assert values.alpha == 0 and values.epochs == 3 and values.seed == 2 ** 32 - 1
    assert values.n_steps == 1000 and isinstance(values.n_steps, int) and values.resume is False
    assert ns == script_namespace(**DEFAULTS)                 # the constants are left as they are


def test_two_parses_in_one_process_are_independent():
    ns = script_namespace(**DEFAULTS)
    first = cli.parse(Script, ns, argv=["--alpha", "0", "--seed", "2"])
    second = cli.parse(Script, ns, argv=["--epochs", "4"])
    assert (first.alpha, first.seed, first.epochs) == (0.0, 2, 0)
    assert (second.alpha, second.seed, second.epochs) == (0.001, 1337, 4)     # nothing carried over
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.alpha = 1.0


@pytest.mark.parametrize("argv, words", [
    (["--alph", "0"], "unrecognized arguments: --alph"),        # an abbreviation is not accepted
    (["--alphas", "0"], "unrecognized arguments: --alphas"),
    (["--epochs", "2.5"], "expected a whole number"),
    (["--resume", "maybe"], "expected true or false"),
])
def test_unknown_abbreviated_or_malformed_options_are_refused(capsys, argv, words):
    assert words in refused(capsys, argv)


@pytest.mark.parametrize("argv, words", [
    (["--alpha", "nan"], "--alpha: expected a finite number, got 'nan'"),
    (["--alpha=-inf"], "--alpha: expected a finite number"),
    (["--epochs", "inf"], "--epochs: expected a finite number, got 'inf'"),
    (["--epochs", "nan"], "--epochs: expected a finite number"),
    (["--epochs", "1e400"], "--epochs: expected a finite number"),              # overflows a float
    (["--epochs", str(10 ** 12)], "EPOCHS=1000000000000 must be at most"),
    (["--n-steps", str(2 ** 64)], f"N_STEPS={2 ** 64} must be at most"),          # beyond int64
    (["--seed", "-1"], "SEED=-1 must be at least 0"),
    (["--seed", str(2 ** 32)], f"SEED={2 ** 32} must be at most {2 ** 32 - 1}"),
    (["--n-steps", "-5"], "N_STEPS=-5 must be at least 1"),
    (["--workers", "-1"], "WORKERS=-1 must be at least 0"),
    (["--batch-size", "-4"], "BATCH_SIZE=-4 must be at least 1"),
    (["--batch-size", "0"], "BATCH_SIZE=0 must be at least 1"),
    (["--initial-condition", "-2"], "INITIAL_CONDITION=-2 must be at least -1"),
    (["--initial-condition", str(10 ** 30)], f"INITIAL_CONDITION={10 ** 30} must be at most 2147483647"),
])
def test_bad_numbers_are_refused_at_the_door(capsys, argv, words):
    assert words in refused(capsys, argv)


@dataclass(frozen=True)
class Unbounded(config.Settings):
    something_new: int = config.setting(3, "a whole number with no range of its own")


def test_a_whole_number_without_its_own_range_still_cannot_overflow(capsys):
    ns = script_namespace(SOMETHING_NEW=3)
    assert cli.parse(Unbounded, ns, argv=["--something-new", str(2 ** 31 - 1)]).something_new == 2 ** 31 - 1
    assert "SOMETHING_NEW=2147483648 must be at most 2147483647" in refused(
        capsys, ["--something-new", str(2 ** 31)], ns, kind=Unbounded)


def test_edited_constants_are_checked_too(capsys):
    """nanoGPT style: a constant edited at the top of a script goes through the same door."""
    assert "ALPHA=nan is not a finite number" in refused(capsys, [], script_namespace(ALPHA=float("nan")))
    assert "SEED=-3 must be at least 0" in refused(capsys, [], script_namespace(SEED=-3))


@dataclass(frozen=True)
class Narrow(config.Settings):
    n_steps: int = config.setting(30, "a stage that needs two steps", least=2, most=100)


def test_a_script_can_narrow_a_range(capsys):
    line = refused(capsys, ["--n-steps", "1"], script_namespace(N_STEPS=30), kind=Narrow)
    assert "N_STEPS=1 must be at least 2" in line
    assert cli.parse(Narrow, script_namespace(N_STEPS=30), argv=["--n-steps", "2"]).n_steps == 2


def test_every_problem_is_named_on_the_one_line(capsys):
    line = refused(capsys, ["--width", "0", "--height", "0"], script_namespace(WIDTH=1280, HEIGHT=720))
    assert "WIDTH=0 must be at least" in line and "HEIGHT=0 must be at least" in line


def test_check_accepts_the_bounds_and_ignores_text_and_bools():
    assert config.check(Script, seed=0, song="nan", resume=True, workers=0) == dict(seed=0, song="nan", resume=True,
                                                                                    workers=0)
    assert config.check(Script, seed=2 ** 32 - 1) == {"seed": 2 ** 32 - 1}
    with pytest.raises(config.SettingError) as e:
        config.check(Script, degrees_per_second=float("inf"))
    assert e.value.line(user_names=True) == "DEGREES_PER_SECOND=inf is not a finite number"


def test_help_shows_the_allowed_range():
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as e:
        cli.parse(Script, script_namespace(**DEFAULTS), argv=["--help"])
    assert e.value.code == 0
    assert "[0..4294967295]" in out.getvalue()


@pytest.mark.parametrize("script, argv, words", [
    ("train_model.py", ["--alph", "0"], "unrecognized arguments: --alph"),
    ("train_model.py", ["--alpha", "nan"], "expected a finite number"),
    ("divergence.py", ["--every", "0"], "EVERY=0 must be at least 1"),
    ("divergence.py", ["--n-steps", "0"], "N_STEPS=0 must be at least 2"),
    ("divergence.py", ["--n-steps", "1"], "N_STEPS=1 must be at least 2"),
    ("divergence.py", ["--fit-steps", "0"], "FIT_STEPS=0 must be at least 2"),
    ("play_embedding.py", ["--width", "0", "--height", "0"], "WIDTH=0 must be at least"),
    ("play_embedding.py", ["--workers", "-1"], "WORKERS=-1 must be at least 0"),
    ("forecast_knn.py", ["--n-steps", "-5"], "N_STEPS=-5 must be at least 1"),
    ("train_latent_mlp.py", ["--batch-size", "-1"], "BATCH_SIZE=-1 must be at least 1"),
    ("embed_audio.py", ["--sections", "32,16"], "SECTIONS='32,16' must increase"),
    ("embed_audio.py", ["--sections", "16;32"], "SECTIONS='16;32' must be start times in seconds"),
    ("embed_audio.py", ["--section-seconds", "-1"], "SECTION_SECONDS=-1 must be at least 0"),
])
def test_scripts_exit_1_with_one_line(tmp_path, script, argv, words):
    p = run_script(script, *argv, "--data-dir", tmp_path / "d", "--output-dir", tmp_path / "o", timeout=60)
    assert p.returncode == 1, p.stderr
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and words in lines[0], p.stderr
    assert not (tmp_path / "d").exists() and not (tmp_path / "o").exists()   # nothing written


# ---------------------------------------------------------------- on a real run (the shared pipeline fixture)

def test_divergence_with_fewer_steps_than_its_report_names(pipeline):
    """Before: --n-steps 3 crashed on mean[5] after the work was done, and the record said steps 1..10."""
    import json
    from conftest import common
    tmp, data, out, song, _ = pipeline
    p = run_script("divergence.py", "--song", song, *common(data, out), "--n-steps", 3, "--alpha", 0, timeout=300)
    assert p.returncode == 0, p.stderr
    run = next(d for d in (data / "groove" / "runs").iterdir() if "_R_" in d.name)
    record = json.loads((run / "divergence_k5_x12.npz.json").read_text())
    assert record["fit_steps"] == [1, 3] and sorted(record["delta_at"]) == ["1", "3"]
    assert "over steps 1-3" in p.stdout


def test_missing_audio_at_play_time_is_one_line(pipeline, tmp_path):
    """Before: ffmpeg could not open the audio and the first frame written raised BrokenPipeError."""
    from conftest import common
    _, data, out, song, _ = pipeline
    videos = lambda: {v: v.read_bytes() for v in out.rglob("*.mp4")}   # noqa: E731
    before = videos()
    away = tmp_path / "away.wav"
    song.rename(away)
    try:
        p = run_script("play_embedding.py", "--song", song, *common(data, out), "--width", 128, "--height", 96,
                       "--fps", 5, "--progress", "false", timeout=300)
    finally:
        away.rename(song)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 1 and len(lines) == 1, p.stderr
    assert "groove.wav" in lines[0] and "missing" in lines[0] and "put it back" in lines[0]
    assert videos() == before                                  # none made, none lost


def test_flags_give_a_script_exactly_these_settings():
    given = dict(SONG="my song/a b.wav", ALPHA=1e-9, EPOCHS=3, SEED=2 ** 32 - 1, N_STEPS=1, WORKERS=0,
                 BATCH_SIZE=4, INITIAL_CONDITION=-1, RESUME=False)
    argv = [text for name, value in given.items() for text in (f"--{name.lower().replace('_', '-')}", str(value))]
    values = cli.parse(Script, script_namespace(**DEFAULTS), argv=argv).settings()
    assert {k: values[k] for k in given} == given and all(type(values[k]) is type(v) for k, v in given.items())


def test_pipeline_help_is_whole_and_names_the_slow_parts():
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    p = subprocess.run([sys.executable, str(root / "pipeline.py"), "--help"], capture_output=True, text=True,
                       cwd=root, timeout=120)
    assert p.returncode == 0
    head = p.stdout.split("options:")[0]
    assert "given once:" not in head and "python pipeline.py --song path/to/mysong.mp3" in head
    assert "The slow parts" in head and "--format html" in head
    assert head.strip().endswith(".")
