"""R-F's and R's stages side by side (dae.side_by_side, pipeline.py's SIDE_BY_SIDE): the same stages and
files as one after the other, every line labelled, a failure in one run the pipeline's one line."""
import io
import json

from conftest import changing_song, common, run_script, write_song
from dae import errors, side_by_side


def test_labelled_lines_come_whole_and_a_redrawn_bar_now_and_then():
    out, now = io.StringIO(), [0.0]
    s = side_by_side.Labelled(out, "R-F", every=10.0, clock=lambda: now[0])
    s.write("half a li")
    assert out.getvalue() == ""                                      # nothing until the line is whole
    s.write("ne\nnext\n")
    for k in range(30):                                              # a bar redrawn in place, 3 s of it
        now[0] = k * 0.1
        s.write(f"\rbar {k}")
    s.write("\rbar done\r")
    now[0] = 20.0
    s.write("bar later\r")
    assert out.getvalue().splitlines() == ["R-F | half a line", "R-F | next", "R-F | bar 0", "R-F | bar later"]
    assert not s.isatty()


def test_a_setting_error_crosses_processes_with_its_problems():
    import pickle
    e = pickle.loads(pickle.dumps(errors.refused("history", "=2 must be at least 3")))
    assert isinstance(e, errors.SettingError) and e.problems == [("history", "=2 must be at least 3")]
    assert e.line(user_names=True) == "HISTORY=2 must be at least 3"


def _stage_files(data):
    """{file under the runs: its sidecar's settings and inputs} (what it was made from, not when)."""
    out = {}
    for side in sorted(data.rglob("runs/*/*.json")):
        meta = json.loads(side.read_text())
        settings = {k: v for k, v in (meta.get("settings") or {}).items() if k not in ("DATA_DIR", "OUTPUT_DIR")}
        out[side.relative_to(data).as_posix()] = (meta.get("kind"), settings)
    return out


def test_side_by_side_runs_the_same_stages_as_one_after_the_other(tmp_path):
    song = write_song(tmp_path / "tune.wav", changing_song(8.0))
    args = ("--song", song, "--epochs", 1, "--format", "html", "--notebook", "false")
    a = run_script("pipeline.py", *args, *common(tmp_path / "a", tmp_path / "ao"))
    b = run_script("pipeline.py", *args, *common(tmp_path / "b", tmp_path / "bo"), "--side-by-side", "false")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    heads = [l for l in a.stdout.splitlines() if l.startswith("== [")]
    assert sorted(heads) == sorted(l for l in b.stdout.splitlines() if l.startswith("== ["))   # every stage, once
    assert heads[0] == "== [1/19] save_dataset.py" and a.stdout.splitlines()[-1].startswith("== done: 19 stages")
    body = [l for l in a.stdout.splitlines() if not l.startswith("== ")]
    after = a.stdout.split("\n== [2/19]", 1)[1].split("\n== done", 1)[0].splitlines()[1:]
    assert [l for l in after if not l.startswith(("== [", "R-F | ", "R | "))] == []     # the runs' lines, labelled
    assert any(l.startswith("R | epoch 1/1") for l in body) and any(l.startswith("R-F | epoch 1/1") for l in body)
    assert _stage_files(tmp_path / "a") == _stage_files(tmp_path / "b")      # the same files, from the same settings
    assert len(_stage_files(tmp_path / "a")) >= 2 * 7       # embedding, latent models, forecasts, divergence of each run


def test_a_failing_run_side_by_side_ends_the_pipeline_with_one_line(tmp_path):
    song = write_song(tmp_path / "tune.wav", changing_song(8.0))
    # a history too long for the song: both runs refuse it in training, the pipeline says it once
    p = run_script("pipeline.py", "--song", song, "--epochs", 1, "--format", "html", "--history", 400,
                   *common(tmp_path / "d", tmp_path / "o"))
    assert p.returncode == 1
    assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("error: "), p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    assert "== done" not in p.stdout and "divergence_plots" not in p.stdout
