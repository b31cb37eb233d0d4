"""Settings never carry over from one in-process call of a stage to the next (the experiment's
call_stage): a setting left out is its default, and the result equals a fresh process's."""
import csv
import io
import json
import subprocess
import sys
import textwrap

from conftest import ROOT, changing_song, common, run_script, write_song
from dae import cli

RUN = "w0.5s_R-F_a0.001_b1_g0_d0_z3_l45_s{seed}"

CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from dae.experiment import call_stage
    song, data, out = sys.argv[1:4]
    dirs = dict(song=song, data_dir=data, output_dir=out)
    call_stage("save_dataset", **dirs, plot=False)
    call_stage("train_model", **dirs, seed=1, epochs=1, learning_rate=0.01, chunks_per_batch=4, verbose=0)
    call_stage("train_model", **dirs, seed=2, epochs=1)       # no learning rate, chunks or verbosity given
""")


def recorded(data, seed):
    record = json.loads((data / "song" / "runs" / RUN.format(seed=seed) / "model" / "encoder.keras.json").read_text())
    return record["settings"], (data / "song" / "runs" / RUN.format(seed=seed) / "history.csv").read_text()


def without_seconds(history_csv):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(io.StringIO(history_csv))]


def test_a_setting_left_out_of_a_call_is_its_default_not_the_previous_calls(tmp_path):
    song = write_song(tmp_path / "song.wav", changing_song(6.0))
    one, fresh = tmp_path / "one", tmp_path / "fresh"
    proc = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), str(song), str(one / "data"),
                           str(one / "out")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for script, *args in (("save_dataset.py", "--plot", "false"), ("train_model.py", "--seed", 2, "--epochs", 1)):
        p = run_script(script, "--song", song, *common(fresh / "data", fresh / "out"), *args)
        assert p.returncode == 0, p.stderr[-2000:]
    first, _ = recorded(one / "data", 1)
    second, history = recorded(one / "data", 2)
    alone, alone_history = recorded(fresh / "data", 2)
    assert first["LEARNING_RATE"] == 0.01 and first["CHUNKS_PER_BATCH"] == 4 and first["VERBOSE"] == 0
    assert second["LEARNING_RATE"] == alone["LEARNING_RATE"] == 1e-3
    assert second["CHUNKS_PER_BATCH"] == alone["CHUNKS_PER_BATCH"] == 8 and second["VERBOSE"] == alone["VERBOSE"]
    same = {k for k in alone if k not in ("SONG", "DATA_DIR", "OUTPUT_DIR")}
    assert {k: second[k] for k in same} == {k: alone[k] for k in same}
    # the numbers too: the in-process run trained exactly as the fresh process did (time taken aside)
    assert without_seconds(history) == without_seconds(alone_history)

def test_configure_takes_its_defaults_from_the_constants_as_first_seen():
    ns = {"__file__": "script.py", "ALPHA": 0.001, "VERBOSE": 1}
    assert cli.configure(ns, ["--alpha", "0", "--verbose", "0"]) == {"ALPHA": 0.0, "VERBOSE": 0}
    assert ns["ALPHA"] == 0.0                                  # the script's globals follow the call
    assert cli.configure(ns, []) == {"ALPHA": 0.001, "VERBOSE": 1}
