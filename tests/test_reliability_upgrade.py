"""A finished run whose model record an older version wrote (no record hash) is saved again from its
checkpoint, not retrained and not refused: the same weights, a record that checks."""
import json

import numpy as np

from conftest import changing_song, common, run_script, write_song
from dae import provenance

RUN = "w0.5s_R-F_a0.001_b1_g0_d0_z3_l45_s0"


def weights(folder):
    import keras
    return [w for part in provenance.MODEL_PARTS
            for w in keras.models.load_model(folder / f"{part}.keras", compile=False).get_weights()]


def test_a_finished_run_with_an_older_record_is_saved_again_from_its_checkpoint(tmp_path):
    song = write_song(tmp_path / "song.wav", changing_song(6.0))
    args = ["--song", song, *common(tmp_path / "data", tmp_path / "out")]
    train = ["train_model.py", *args, "--epochs", 1, "--seed", 0, "--verbose", 0]
    for proc in (run_script("save_dataset.py", *args, "--plot", "false"), run_script(*train)):
        assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = tmp_path / "data" / "song" / "runs" / RUN
    before, history = weights((run_dir / "model").resolve()), (run_dir / "history.csv").read_text()
    for part in provenance.MODEL_PARTS:                 # as an older version wrote them: no record hash
        side = run_dir / "model" / f"{part}.keras.json"
        record = json.loads(side.read_text())
        del record[provenance.RECORD_HASH]
        side.write_text(json.dumps(record))
    proc = run_script(*train)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "saving it again from the checkpoint" in proc.stdout and "resuming" not in proc.stdout
    assert (run_dir / "history.csv").read_text() == history                 # not trained again
    after = weights((run_dir / "model").resolve())
    assert len(after) == len(before) and all(np.array_equal(a, b) for a, b in zip(after, before))
    proc = run_script("embed_audio.py", *args, "--seed", 0, "--plot", "false")   # the record now checks
    assert proc.returncode == 0, proc.stderr[-2000:]
