"""Provenance, crash safety and locking: every stage checks the chain it reads.

Each test starts from a copy of one small trained run (1 epoch on 8 s of
synthetic audio), breaks one link of the chain the way a user or a crash
would, and checks that the stage refuses with one line naming the stage to
rerun (exit 1), or that nothing is lost.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import (ROOT, changing_song, common, one_line_error, run_script, train_small, user_error,
                      write_song)
from dae import dataset, embedding, latent, layout, provenance, reports, stages, store, training
from dae.errors import UserError

SEED = ("--seed", 0)  # train_small's runs use seed 0; every other run setting is the default


def embed(paths):
    Z, start, center, end, chain = embedding.embed_song(paths)
    embedding.save(paths, Z, start, center, end, chain)
    return Z


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """One trained and embedded run (and its audio), to copy."""
    tmp = tmp_path_factory.mktemp("prov")
    song = write_song(tmp / "song.wav", changing_song(8.0))
    paths, *_ = train_small(song, tmp / "data", tmp / "out", epochs=1, seed=0)
    embed(paths)
    return tmp, song


@pytest.fixture
def run(base, tmp_path):
    """A private copy of the base run: (paths, song, cli args)."""
    src, song = base
    shutil.copytree(src / "data", tmp_path / "data", symlinks=True)
    (tmp_path / "out").mkdir()
    run_name = next((tmp_path / "data" / "song" / "runs").iterdir()).name
    paths = layout.Paths(song, tmp_path / "data", tmp_path / "out", run=run_name)
    return paths, song, ("--song", song, *common(tmp_path / "data", tmp_path / "out"), *SEED)


@pytest.fixture
def own_run(tmp_path):
    """A trained and embedded run with its own audio file (tests that change the audio)."""
    song = write_song(tmp_path / "mine.wav", changing_song(8.0))
    paths, *_ = train_small(song, tmp_path / "data", tmp_path / "out", epochs=1, seed=0)
    embed(paths)
    return paths, song, ("--song", song, *common(tmp_path / "data", tmp_path / "out"), *SEED)


# ---------------------------------------------------------------- stale inputs

def test_a_retrained_encoder_makes_every_reader_refuse_the_old_embedding(run):
    paths, song, args = run
    assert run_script("divergence.py", *args).returncode == 0          # fresh: accepted
    assert len(reports.load_divergence(paths.song_dir)) == 1
    train_small(song, paths.data, paths.outputs, epochs=2, seed=0, resume=True)   # one more epoch, new encoder
    for script in ("forecast_knn.py", "divergence.py"):
        one_line_error(run_script(script, *args), str(paths.embedding), "embed_audio.py")
    user_error(lambda: stages.load_path(paths), "another encoder", "embed_audio.py")
    user_error(lambda: reports.load_divergence(paths.song_dir), "embed_audio.py")
    embed(paths)                                                        # the named remedy works...
    assert stages.load_path(paths)[0].shape[1] == 3
    user_error(lambda: reports.load_divergence(paths.song_dir), "divergence.py")  # ...and the next link is named


def test_audio_that_changed_or_went_missing_and_a_resaved_song(own_run):
    paths, song, args = own_run
    video = ("--width", 320, "--height", 180, "--fps", 10, "--progress", "false")
    song.rename(song.with_suffix(".away"))                              # missing audio: only the video needs it
    assert embedding.load(paths)["Z"].shape[1] == 3
    one_line_error(run_script("play_embedding.py", *args, *video), "missing", str(song))
    song.with_suffix(".away").rename(song)
    write_song(song, changing_song(8.0)[::-1].copy())                  # other audio under the same name
    one_line_error(run_script("embed_audio.py", *args), str(song), "changed", "save_dataset.py")
    for load in (lambda: dataset.load(paths), lambda: embedding.load(paths, need_audio=True)):   # training, video
        user_error(load, str(song), "changed", "save_dataset.py")
    spec = paths.spectrogram.read_bytes()
    dataset.make(song, paths, 0.5)                                       # the song is saved again
    assert paths.spectrogram.read_bytes() != spec
    one_line_error(run_script("play_embedding.py", *args, *video), "another spectrogram", "train_model.py")
    assert not paths.video.exists()
    user_error(lambda: embedding.embed_song(paths), "another spectrogram", "train_model.py")


def test_saving_the_same_audio_again_keeps_the_chain_valid(run):
    paths, song, args = run
    before = paths.spectrogram.read_bytes()
    for window in (0.5, 2.0):                                          # the window is the sidecar's business
        dataset.make(song, paths, window)
        assert paths.spectrogram.read_bytes() == before                # reproducible bytes, nothing goes stale
    assert embedding.load(paths)["Z"].shape[1] == 3


def test_an_encoder_copied_in_from_a_run_of_another_latent_size_is_refused(run):
    paths, song, args = run
    other, *_ = train_small(song, paths.data, paths.outputs, epochs=1, seed=0, latent_dim=2)
    before = paths.embedding.read_bytes()
    target = paths.model_dir.resolve()
    shutil.copy(other.encoder, target / "encoder.keras")                # the file alone
    one_line_error(run_script("embed_audio.py", *args), "does not match its record", "train_model.py")
    for f in ("encoder.keras", "encoder.keras.json"):                   # the file with its sidecar
        shutil.copy(other.model_dir / f, target / f)
    user_error(lambda: embedding.load_run(paths), "train_model.py")
    shutil.rmtree(target)                                               # the whole model folder
    shutil.copytree(other.model_dir.resolve(), target)
    user_error(lambda: embedding.load_run(paths), "belongs to run", "train_model.py")
    assert paths.embedding.read_bytes() == before                      # the 3-D embedding is kept


# ---------------------------------------------------------------- the model as one unit

def test_parts_of_two_saves_are_never_mixed(run):
    paths, song, args = run
    first = paths.model_dir.resolve()
    train_small(song, paths.data, paths.outputs, epochs=2, seed=0, resume=True)
    second = paths.model_dir.resolve()
    assert first != second and first.is_dir()                           # the previous save is kept for readers
    chain, enc, dec, fore = training.load_models(paths)
    assert {chain[p]["model_id"] for p in provenance.MODEL_PARTS} == {chain["encoder"]["model_id"]}
    for f in ("decoder.keras", "decoder.keras.json"):                   # an old decoder beside the new encoder
        shutil.copy(first / f, second / f)
    user_error(lambda: embedding.load_run(paths), "mixes parts", "train_model.py")
    one_line_error(run_script("embed_audio.py", *args), "mixes parts")


def test_a_failed_save_keeps_the_previous_model_and_leaves_nothing(run):
    paths, song, args = run
    before = paths.model_dir.resolve()
    ids = provenance.check(paths, "encoder")["encoder"]["model_id"]

    def write(folder, model_id):
        (folder / "encoder.keras").write_bytes(b"half")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        store.commit_model(paths, write)
    assert paths.model_dir.resolve() == before
    assert provenance.check(paths, "encoder")["encoder"]["model_id"] == ids
    assert not list(paths.run_dir.glob(".tmp*"))


COMMIT_CHILD = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from dae import layout, provenance, store
    paths = layout.Paths("song", {data!r}, {out!r}, run="r")
    step, die_at = [0], int(sys.argv[1])
    real = {{"replace": os.replace, "rename": os.rename, "symlink": os.symlink}}
    def counted(name):
        def f(*a, **k):
            step[0] += 1
            if step[0] == die_at:
                os._exit(9)                      # killed right before this file operation
            return real[name](*a, **k)
        return f
    for name in real:
        setattr(os, name, counted(name))
    tag = sys.argv[2]
    def write(folder, model_id):
        for part in provenance.MODEL_PARTS:
            (folder / (part + ".keras")).write_text(part + tag)
        unit = {{p: provenance.file_hash(folder / (p + ".keras")) for p in provenance.MODEL_PARTS}}
        for part in provenance.MODEL_PARTS:
            provenance.write_sidecar(folder / (part + ".keras"), part, {{}}, model_id=model_id, unit=unit, run="r",
                                     width=1, height=1, latent_dim=1, scale_min=0.0, scale_max=1.0,
                                     sample_rate=1, architecture="R", tag=tag)
    store.commit_model(paths, write)
    print("steps", step[0])
""")


def test_a_process_killed_at_any_file_operation_of_a_save_leaves_a_complete_model(tmp_path):
    """Kill a save before each of its renames in turn: the model is always the old or the new one."""
    data, out = tmp_path / "data", tmp_path / "out"
    child = tmp_path / "child.py"
    child.write_text(COMMIT_CHILD.format(root=str(ROOT), data=str(data), out=str(out)))
    paths = layout.Paths("song", data, out, run="r")

    def save(die_at, tag):
        return subprocess.run([sys.executable, str(child), str(die_at), tag], capture_output=True, text=True)

    first = save(0, "old")
    assert first.returncode == 0, first.stderr
    steps = int(first.stdout.split()[-1])
    assert steps >= 6                           # three sidecars, the folder rename, the link, its swap
    for die_at in range(1, steps + 1):
        p = save(die_at, f"new{die_at}")
        assert p.returncode == 9
        chain = provenance.check(paths, "encoder")  # never a mix, never missing: killed before the swap, the old one
        assert chain["encoder"]["tag"] == "old"
        assert all(chain[part]["tag"] == chain["encoder"]["tag"] for part in provenance.MODEL_PARTS)
        with store.writing(paths, "test"):      # the next run of the stage cleans up after the dead one
            pass
        assert not list(paths.run_dir.glob(".tmp*")), list(paths.run_dir.iterdir())
    assert save(0, "final").returncode == 0
    assert provenance.check(paths, "encoder")["encoder"]["tag"] == "final"
    assert len(list(paths.run_dir.glob("model-*"))) <= 2


def test_stale_temporary_files_of_dead_processes_are_removed_by_the_next_run(run):
    paths, song, args = run
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    paths.output_dir.mkdir(parents=True, exist_ok=True)
    stale = [paths.run_dir / f".tmp{dead}-embedding.npz", paths.output_dir / f".tmp{dead}-trajectory.mp4",
             paths.run_dir / f".tmp{dead}-model-20260101T000000-abc"]
    for s in stale[:2]:
        s.write_bytes(b"x" * 1000)
    stale[2].mkdir()
    (stale[2] / "encoder.keras").write_bytes(b"half")
    alive = paths.run_dir / f".tmp{os.getpid()}-latent_mlp.keras"      # a live writer's file is not touched
    alive.write_bytes(b"busy")
    assert run_script("embed_audio.py", *args).returncode == 0
    assert not any(s.exists() for s in stale) and alive.exists()


# ---------------------------------------------------------------- locks and refusals

def test_a_second_writer_is_told_who_holds_the_run(run):
    paths, song, args = run
    before = paths.embedding.read_bytes()
    with store.locked(paths.run_dir, "train_model.py"):
        p = run_script("embed_audio.py", *args)
        one_line_error(p, "being written by", f"process {os.getpid()}", "train_model.py")
    assert paths.embedding.read_bytes() == before
    with store.writing(paths, "embed_audio.py"):                         # free again once the holder is done
        pass


def test_latent_epochs_0_is_an_error_and_keeps_the_trained_model(run):
    paths, song, args = run
    stages.train_latent(paths, "mlp", 1, 4, 0, {})
    before = paths.latent_model("mlp").read_bytes()
    one_line_error(run_script("train_latent_mlp.py", *args, "--epochs", 0), "EPOCHS=0", "untrained")
    assert paths.latent_model("mlp").read_bytes() == before


# ---------------------------------------------------------------- damaged files

def _resign(path):
    """Make the sidecar agree with the (damaged) bytes, as a buggy or killed writer might."""
    side = layout.sidecar_path(path)
    meta = json.loads(side.read_text())
    meta["sha256"] = provenance.file_hash(path)
    meta[provenance.RECORD_HASH] = provenance.record_hash(meta)    # as write_sidecar would
    side.write_text(json.dumps(meta))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _object_array(path):
    with open(path, "wb") as f:
        np.savez(f, Z=np.array([None, {"a": 1}], dtype=object), t_start=np.zeros(2), t_center=np.zeros(2),
                 t_end=np.zeros(2))


def _garbage(path):
    path.write_bytes(b"PK\x03\x04 not really a zip" * 10)


@pytest.mark.parametrize("damage", [_truncate, _object_array, _garbage])
@pytest.mark.parametrize("resign", [False, True])
def test_a_damaged_embedding_is_one_line_naming_the_stage(run, damage, resign):
    paths, song, args = run
    damage(paths.embedding)
    if resign:
        _resign(paths.embedding)
    text = user_error(lambda: stages.load_path(paths), str(paths.embedding), "embed_audio.py")
    assert ("damaged" in text) if resign else ("does not match its record" in text)


def test_a_damaged_spectrogram_names_save_dataset(run):
    paths, song, args = run
    _truncate(paths.spectrogram)
    _resign(paths.spectrogram)
    user_error(lambda: dataset.load(paths), "spectrogram.npz", "damaged", "save_dataset.py")     # what training reads
    user_error(lambda: embedding.embed_song(paths), "another spectrogram", "train_model.py")


@pytest.mark.parametrize("sidecar, words", [
    ([1, 2, 3], ("not a record",)),
    ({"kind": "embedding"}, ("lacks", "sha256")),
    ("drop latent_dim", ("lacks", "latent_dim")),
    ("latent_dim text", ("latent_dim",)),
    ('{"kind": "embedding", ', ("unreadable",)),
])
def test_a_sidecar_of_the_wrong_shape_is_one_line(run, sidecar, words):
    paths, song, args = run
    side = layout.sidecar_path(paths.embedding)
    meta = json.loads(side.read_text())
    if sidecar == "drop latent_dim":
        del meta["latent_dim"]
        side.write_text(json.dumps(meta))
    elif sidecar == "latent_dim text":
        meta["latent_dim"] = "three"
        side.write_text(json.dumps(meta))
    elif isinstance(sidecar, str):
        side.write_text(sidecar)
    else:
        side.write_text(json.dumps(sidecar))
    user_error(lambda: stages.load_path(paths), *words, "embed_audio.py")


def test_a_corrupt_latent_model_is_one_line_naming_its_stage(run):
    paths, song, args = run
    stages.train_latent(paths, "mlp", 1, 4, 0, {})
    model = paths.latent_model("mlp")
    _truncate(model)
    user_error(lambda: provenance.check(paths, "latent mlp"), "does not match its record", "train_latent_mlp.py")
    _resign(model)
    one_line_error(run_script("forecast_mlp.py", *args), "could not be loaded", "train_latent_mlp.py")
    user_error(lambda: latent.load(provenance.check(paths, "latent mlp")["latent mlp"]), "train_latent_mlp.py")


def test_a_model_saved_before_provenance_asks_for_retraining(run):
    paths, song, args = run
    folder = paths.model_dir.resolve()
    paths.model_dir.unlink()
    for f in folder.iterdir():
        shutil.move(str(f), paths.run_dir / f.name)              # the old flat layout
    one_line_error(run_script("embed_audio.py", *args), "older version", "--resume false")


# ---------------------------------------------------------------- run identity

def test_run_identity_comes_from_one_declared_place():
    from dae import config
    cfg = config.KnnForecast.from_constants(__import__("settings"), {"N_STEPS": 5})
    assert set(config.Run.names()) <= set(cfg.names()) and cfg.n_steps == 5
    assert layout.run_paths(cfg).run == layout.run_name(*(getattr(cfg, k) for k in (
        "window_seconds", "alpha", "beta", "gamma", "delta", "latent_dim", "history", "seed")))
    with pytest.raises(AttributeError):
        layout.run_paths({"SONG": "x"})                                  # a run is named by a config, not a dict
    for script in ("forecast_knn.py", "divergence.py", "embed_audio.py", "play_embedding.py",
                   "train_latent_lstm.py", "forecast_mlp.py"):
        source = (ROOT / script).read_text()
        assert "from settings import" not in source, script             # nothing imported only to be found
    p = run_script("forecast_knn.py", "--help")
    assert p.returncode == 0
    assert "selects the run: the forecasting-loss weight it was trained with" in " ".join(p.stdout.split())
    assert "plain autoencoder" not in p.stdout                          # not the training meaning


def test_a_model_setting_beyond_the_named_ones_names_the_run_unless_it_is_its_default(monkeypatch):
    """A new setting that shapes the model (a new loss weight, say) names its run folder without an
    edit of run_name, and runs that leave it at its default keep the names they always had."""
    from dae import config
    base = layout.run_name(0.5, 0.001, 1.0, 0.0, 0.0, 3, 45, 1)
    assert layout.run_name(0.5, 0.001, 1.0, 0.0, 0.0, 3, 45, 1, zeta=0.25) == base + "_zeta0.25"
    monkeypatch.setattr(config, "MODEL_SETTINGS", config.MODEL_SETTINGS + ("frame_step",))   # as if it shaped it
    assert layout.run_paths(config.Run(seed=1)).run == base
    assert layout.run_paths(config.Run(seed=1, frame_step=3)).run == base + "_frame_step3"
