"""Settings never carry over from one in-process call of a stage, or of a trial, to the next: a
setting left out is its default, and the result equals a fresh process's."""
import csv
import io
import json
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, changing_song, common, run_script, write_song
from dae import cli, config

RUN = "w0.5s_R-F_a0.001_b1_g0_d0_z3_l45_s{seed}"

STAGES = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    import settings, train_model
    from dae import config, stages
    song, data, out = sys.argv[1:4]
    dirs = dict(song=song, data_dir=data, output_dir=out)
    stages.save_dataset(config.Spectrogram.from_constants(settings, **dirs, plot=False))
    stages.train_model(config.Training.from_constants(settings, train_model, **dirs, seed=1, epochs=1,
                                                      learning_rate=0.01, chunks_per_batch=4, verbose=0))
    stages.train_model(config.Training.from_constants(settings, train_model, **dirs, seed=2, epochs=1))
""")


def recorded(data, seed, song="song", run=RUN):
    folder = data / song / "runs" / run.format(seed=seed)
    record = json.loads((folder / "model" / "encoder.keras.json").read_text())
    return record["settings"], (folder / "history.csv").read_text()


def without_seconds(history_csv):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(io.StringIO(history_csv))]


def test_a_setting_left_out_of_a_call_is_its_default_not_the_previous_calls(tmp_path):
    song = write_song(tmp_path / "song.wav", changing_song(6.0))
    one, fresh = tmp_path / "one", tmp_path / "fresh"
    proc = subprocess.run([sys.executable, "-c", STAGES.format(root=str(ROOT)), str(song), str(one / "data"),
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
    assert set(second) == set(alone)                           # the same settings recorded as the script's
    same = {k for k in alone if k not in ("SONG", "DATA_DIR", "OUTPUT_DIR")}
    assert {k: second[k] for k in same} == {k: alone[k] for k in same}
    # the numbers too: the in-process run trained exactly as the fresh process did (time taken aside)
    assert without_seconds(history) == without_seconds(alone_history)


# ---------------------------------------------------------------- two trials in one process

# the first trial trains differently in every way a variant may say; the second says nothing but alpha
VARIANTS = {"A": {"ALPHA": 0.0, "LEARNING_RATE": 0.01, "CHUNKS_PER_BATCH": 4, "CHUNK_SAMPLES": 2,
                  "ORDER": "tiled", "GAMMA": 0.01},
            "B": {"ALPHA": 0.001}}
TRIAL_RUNS = {"A": "w0.5s_R_a0_b1_g0.01_d0_z3_l45_s1", "B": "w0.5s_R-F_a0.001_b1_g0_d0_z3_l45_s2"}

TRIALS = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    from dae import config, grid, trials
    data, out, which = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    cfg = config.Experiment(songs="synth-3", variants="A,B", seeds="1,2", epochs=1, name="leak", use_ray=False,
                            synth_seconds=6.0, synth_rate=22050, trust_points=200, data_dir=data, output_dir=out)
    variants = json.loads(sys.argv[4])
    todo, _, _ = grid.build_grid(cfg, variants)
    todo = [t for t in todo if t["variant"] + str(t["seed"]) in which]
    results = []
    trials.run_in_process(todo, results.append, training=config.Training(), divergence=config.Divergence())
    print(json.dumps(results))
""")


def run_trials(data, out, which):
    """The trials `which` (variant and seed: "A1", in grid order) of the leak grid in one fresh Python process."""
    proc = subprocess.run([sys.executable, "-c", TRIALS.format(root=str(ROOT)), str(data), str(out), ",".join(which),
                           json.dumps(VARIANTS)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = {r["variant"]: r for r in json.loads(proc.stdout.strip().splitlines()[-1])}
    assert all(r["status"] == "ok" for r in results.values()), results
    return results


def test_two_trials_in_one_process_equal_each_in_a_fresh_process(tmp_path):
    """The experiment's trial runner, twice in one process (different variants, seeds and training
    settings), gives what each trial gives alone: every metric, every δ curve, the recorded
    settings and the training history (time taken aside)."""
    from dae.report import METRICS
    together = run_trials(tmp_path / "one" / "data", tmp_path / "one" / "out", ["A1", "B2"])
    alone = {v: run_trials(tmp_path / v / "data", tmp_path / v / "out", [f"{v}{seed}"])[v]
             for v, seed in (("A", 1), ("B", 2))}
    for v in ("A", "B"):
        a, b = together[v], alone[v]
        assert a["run"] == b["run"] == TRIAL_RUNS[v] and a["settings"] == b["settings"]
        assert {"training", "embedding"} <= set(a["computed"])
        for col in [m[0] for m in METRICS] + ["n_points", "n_initial_conditions", "exclusion_radius"]:
            assert a[col] == b[col], (v, col, a[col], b[col])
        assert a["curves"] == b["curves"] and a["made_from"]["divergence"] == b["made_from"]["divergence"]
        mine, history = recorded(tmp_path / "one" / "data", None, "synth-3", TRIAL_RUNS[v])
        theirs, alone_history = recorded(tmp_path / v / "data", None, "synth-3", TRIAL_RUNS[v])
        same = {k for k in theirs if k not in ("DATA_DIR", "OUTPUT_DIR")}
        assert set(mine) == set(theirs) and {k: mine[k] for k in same} == {k: theirs[k] for k in same}
        assert without_seconds(history) == without_seconds(alone_history)
    settings_b, _ = recorded(tmp_path / "one" / "data", None, "synth-3", TRIAL_RUNS["B"])
    assert settings_b["LEARNING_RATE"] == 1e-3 and settings_b["CHUNKS_PER_BATCH"] == 8    # not A's
    assert settings_b["CHUNK_SAMPLES"] == 1 and settings_b["ORDER"] == "original" and settings_b["GAMMA"] == 0


# ---------------------------------------------------------------- the command line

def test_parse_twice_in_one_process_gives_independent_configs_and_leaves_the_constants():
    ns = {"__file__": "script.py", "ALPHA": 0.001, "VERBOSE": 1, "OTHER": "kept"}
    before = dict(ns)
    first = cli.parse(config.Training, ns, argv=["--alpha", "0", "--verbose", "0"])
    assert (first.alpha, first.verbose) == (0.0, 0)
    assert ns == before                                        # nothing written back
    second = cli.parse(config.Training, ns, argv=[])
    assert (second.alpha, second.verbose) == (0.001, 1) and (first.alpha, first.verbose) == (0.0, 0)
    assert second == config.Training(alpha=0.001, verbose=1) and first != second
    with pytest.raises(Exception):                             # frozen: a config cannot change after it is made
        first.alpha = 1.0
    import settings
    shared = {k: v for k, v in vars(settings).items() if k.isupper()}
    cli.parse(config.Training, settings, ns, argv=["--song", "other", "--seed", "7"])
    assert {k: v for k, v in vars(settings).items() if k.isupper()} == shared
