"""Reliability of the records themselves: a sidecar's facts are hashed, pictures are committed with
their sidecars as one unit whatever instant a kill comes, a `.lock` link is never followed, a sidecar
naming an unknown or cyclic input is one line, and a file where a folder should be is one line.

No model is trained: the runs here hold the real spectrogram of a short song, a committed model of
three placeholder files with real records, and an embedding of random points with a real record
(`fake_run`), which is all that checking a chain and drawing the pictures read.
"""
import gc
import json
import os
import signal

import numpy as np
import pytest

from conftest import changing_song, common, one_line_error, run_script, user_error, write_song
from dae import dataset, embedding, layout, provenance, stages, store
from dae.forecast import unit_scale
from dae.spectrogram import window_times

RUN = layout.run_name(0.5, 0.001, 1.0, 0.0, 0.0, 3, 45, 1337)   # the default settings' run
N_POINTS = 60


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    return write_song(tmp_path_factory.mktemp("song") / "song.wav", changing_song(3.0))


@pytest.fixture
def fake_run(song, tmp_path):
    """The default settings' run of `song` in tmp_path/data, with a placeholder model and an embedding."""
    data, out = tmp_path / "data", tmp_path / "out"
    dataset.make(song, layout.Paths(song, data, out), 0.5)
    paths = layout.Paths(song, data, out, run=RUN)
    spec = provenance.check(paths, "spectrogram")["spectrogram"]

    def write(folder, model_id):
        for part in provenance.MODEL_PARTS:
            (folder / f"{part}.keras").write_bytes(part.encode())
        unit = {p: provenance.file_hash(folder / f"{p}.keras") for p in provenance.MODEL_PARTS}
        for part in provenance.MODEL_PARTS:
            provenance.write_sidecar(folder / f"{part}.keras", part, {"WINDOW_SECONDS": 0.5},
                                     inputs={"spectrogram": spec}, run=RUN, model_id=model_id, unit=unit,
                                     width=spec["window_width"], height=10, latent_dim=3, scale_min=0.0,
                                     scale_max=1.0, sample_rate=spec["sample_rate"], architecture="R-F")
    store.commit_model(paths, write)
    embed(paths, 0)
    return paths


def embed(paths, seed):
    """Save an embedding of N_POINTS random points (one per seed) as stage 3 does; returns its sha256."""
    chain = provenance.check(paths, "encoder")
    enc = chain["encoder"]
    Z = np.random.default_rng(seed).normal(size=(N_POINTS, 3)).astype(np.float32)
    embedding.save(paths, Z, *window_times(N_POINTS, enc["width"], enc["sample_rate"]), chain)
    return provenance.file_hash(paths.embedding)


def edit_sidecar(path, **changes):
    """Change facts of the sidecar of `path` by hand (its record hash as it was)."""
    side = layout.sidecar_path(path)
    meta = json.loads(side.read_text())
    meta.update(changes)
    side.write_text(json.dumps(meta, indent=2, sort_keys=True))


def rewrite_sidecar(path, **changes):
    """Change facts of the sidecar of `path` and hash the record again, as write_sidecar would."""
    side = layout.sidecar_path(path)
    meta = json.loads(side.read_text())
    meta.update(changes)
    meta[provenance.RECORD_HASH] = provenance.record_hash(meta)
    side.write_text(json.dumps(meta))


# ---------------------------------------------------------------- 1. a sidecar's facts are hashed

@pytest.mark.parametrize("part, fact, value, stage", [
    ("encoder", "scale_max", 2.0, "train_model.py"),          # would rescale every window the encoder reads
    ("embedding", "width", 3, "embed_audio.py"),              # would move the KNN exclusion radius
    ("embedding", "points_per_second", 1.0, "embed_audio.py"),  # would rescale the growth per second
])
def test_an_edited_fact_in_a_sidecar_is_refused_like_an_edited_file(fake_run, part, fact, value, stage):
    paths = fake_run
    target = paths.model_dir.resolve() / "encoder.keras" if part == "encoder" else paths.embedding
    stages.knn_setup(paths, 5, -1, False)                     # accepted as written
    edit_sidecar(target, **{fact: value})
    for reader in (lambda: provenance.check(paths, part), lambda: stages.knn_setup(paths, 5, -1, False)):
        user_error(reader, str(layout.sidecar_path(target)), "edited", stage)


def test_a_sidecar_without_a_record_hash_is_from_an_older_version_and_a_reformatted_one_is_fine(fake_run):
    paths = fake_run
    side = layout.sidecar_path(paths.embedding)
    meta = json.loads(side.read_text())
    side.write_text(json.dumps(dict(reversed(meta.items()))))          # another layout, the same facts
    assert provenance.check(paths, "embedding")["embedding"]["width"] == meta["width"]
    del meta[provenance.RECORD_HASH]
    side.write_text(json.dumps(meta))
    user_error(lambda: provenance.check(paths, "embedding"), str(side), provenance.RECORD_HASH, "older version",
             "embed_audio.py")


# ---------------------------------------------------------------- 2. pictures commit with their sidecars

class Killed:
    """Run a stage's writing in a forked child that SIGKILLs itself before its n-th file operation
    (rename, replace or unlink: where a commit can be cut), or count those operations here."""
    CALLS = ("replace", "rename", "unlink")

    @classmethod
    def _wrapped(cls, on_event):
        real = {name: getattr(os, name) for name in cls.CALLS}
        for name in cls.CALLS:
            def f(*a, _real=real[name], **k):
                on_event()
                return _real(*a, **k)
            setattr(os, name, f)
        return real

    @classmethod
    def count(cls, action):
        n = [0]
        real = cls._wrapped(lambda: n.__setitem__(0, n[0] + 1))
        try:
            action()
        finally:
            for name, f in real.items():
                setattr(os, name, f)
        return n[0]

    @classmethod
    def at(cls, event, action):
        """True if the child was killed, False if it finished first."""
        # a forked copy of a process that has used TensorFlow (another test file in this worker) was
        # seen to crash collecting TensorFlow's garbage: it is collected before the fork, and the child
        # collects nothing (it leaves by _exit)
        gc.collect()
        pid = os.fork()
        if pid == 0:
            gc.disable()
            status = 3
            try:
                n = [0]

                def on_event():
                    n[0] += 1
                    if n[0] == event:
                        os.kill(os.getpid(), signal.SIGKILL)
                cls._wrapped(on_event)
                action()
                status = 0
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert killed or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0), \
            f"the child ended otherwise than killed or finished (wait status {status})"
        return killed


PICTURES = ("trajectory.png", "trajectory.html", "trajectory_sections.png")


def _pictures(paths):
    """{picture name: the embedding sha256 its sidecar names}, for the pictures there now; each
    picture must have a sidecar that holds its sha256 (and a sidecar no absent picture)."""
    found = {}
    for name in PICTURES:
        picture = paths.output_dir / name
        side = layout.sidecar_path(picture)
        assert picture.exists() == side.exists(), (name, sorted(os.listdir(paths.output_dir)))
        if picture.exists():
            meta = provenance.read_sidecar(picture, "trajectory plot", "-")
            assert meta["sha256"] == provenance.file_hash(picture), name
            found[name] = meta["inputs"]["embedding"]["sha256"]
    return found


def test_a_kill_at_any_instant_of_drawing_leaves_one_embeddings_pictures_each_beside_its_sidecar(fake_run):
    from dae import config
    paths = fake_run
    names = {True: set(PICTURES), False: set(PICTURES[:2])}      # with and without the sections picture

    def draw(sections):
        cfg = config.Embedding(window_seconds=0.5, sections="1,2" if sections else "", find_sections=False)
        with store.writing(paths, "embed_audio.py"):            # the stage: finishes or cleans what a kill left
            stages.draw_embedding(paths, cfg)

    draw(True)                                           # the first drawing also installs plotly.js
    events = Killed.count(lambda: draw(True))
    assert events >= 14                                  # 3 drawn, 3 sidecars, journal, 6 renames, its removal
    current, sections = provenance.file_hash(paths.embedding), True
    finished = []
    commit = events - 8                                  # the journal, 6 renames, its removal: every one
    for i, event in enumerate(e for e in range(1, events + 1) if e > commit or e % 2):
        previous, was = current, sections
        current, sections = embed(paths, event), event % 3 == 0       # a new embedding, sections or not
        if not Killed.at(event, lambda: draw(sections)):
            finished.append(event)                       # a drawing without sections has fewer operations
        if i % 2:
            provenance.check(paths, "embedding")         # a reader completes a commit cut short...
        else:
            with store.writing(paths, "embed_audio.py"):       # ...and so does the next writer
                pass
        seen = _pictures(paths)
        assert set(seen.values()) in ({previous}, {current}), (event, seen)    # one embedding's set...
        assert set(seen) == names[was if set(seen.values()) == {previous} else sections], (event, seen)
        draw(sections)                                   # the next run
        assert _pictures(paths) == dict.fromkeys(names[sections], current), event
        assert not [p for p in os.listdir(paths.output_dir) if p.startswith(".tmp") or p == ".commit.json"]
    assert min(finished, default=events) > 10, finished    # 2 drawn, 2 sidecars, journal, 4 renames, removal


def test_a_kill_at_any_instant_of_saving_a_forecast_leaves_its_arrays_and_pictures_of_one_save(fake_run):
    paths = fake_run
    Z, meta = stages.load_path(paths)
    Zs, _, _ = unit_scale(Z)
    data, png, html = paths.forecast("knn", 10)

    def save(shift):
        with store.writing(paths, "forecast_knn.py"):
            stages.save_forecast(paths, "knn", 10, Zs[10:40] + shift, Z, {}, {"embedding": meta})

    def saved():
        """The shift of the forecast there now: its npz and both pictures check out as one save."""
        for picture in (png, html):
            chain = provenance.check(paths, "knn forecast plot", path=picture)
            assert chain["knn forecast"]["path"] == data
        forecast = provenance.arrays(provenance.check(paths, "knn forecast", path=data)["knn forecast"])["forecast"]
        return round(float(forecast[0, 0] - Zs[10, 0]), 6)

    save(0.0)
    events = Killed.count(lambda: save(0.0))
    assert events >= 14                   # npz, 2 pictures, 3 sidecars, journal, 6 renames, its removal
    shift = 0.0
    for event in range(events, 0, -3):                  # from the journal's removal back to the drawing
        previous, shift = shift, round(shift + 0.01, 6)
        assert Killed.at(event, lambda: save(shift))
        assert saved() in (previous, shift), event       # a reader finds one save's three files
        save(shift)
        assert saved() == shift, event


# ---------------------------------------------------------------- 3. a .lock link is never followed

def test_a_lock_that_is_a_link_is_refused_and_what_it_points_to_is_untouched(fake_run, song, tmp_path):
    paths = fake_run
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    lock = paths.song_dir / store.LOCK_NAME
    lock.unlink(missing_ok=True)
    lock.symlink_to(target)

    def hold():
        with store.locked(paths.song_dir, "test"):
            pass
    user_error(hold, str(lock), "symbolic link", "remove")
    one_line_error(run_script("save_dataset.py", "--song", song, *common(paths.data, paths.outputs)),
                  str(lock), "symbolic link", "remove")
    assert target.read_text() == "keep me\n" and lock.is_symlink()
    lock.unlink()
    os.mkfifo(lock)                                          # nor anything else that is not a plain file
    user_error(hold, str(lock), "not a plain file", "remove")


# ---------------------------------------------------------------- 4. unknown and cyclic input roles

def test_an_unknown_or_cyclic_input_role_is_one_line_naming_the_sidecar(fake_run):
    paths = fake_run
    side = str(layout.sidecar_path(paths.embedding))
    inputs = json.loads(layout.sidecar_path(paths.embedding).read_text())["inputs"]
    for role in ("nonsense", "model folder", "divergence"):   # no such kind; not a kind; a kind with no place
        rewrite_sidecar(paths.embedding, inputs=inputs | {role: {"file": "x", "sha256": "0" * 64}})
        user_error(lambda: provenance.check(paths, "embedding"), side, f"unknown input role {role!r}", "embed_audio.py")
    rewrite_sidecar(paths.embedding, inputs=inputs | {"embedding": inputs["encoder"]})
    user_error(lambda: provenance.check(paths, "embedding"), side, "cycle embedding -> embedding", "embed_audio.py")
    store.save_text(paths.latent_model("mlp"), "a latent model")
    rewrite_sidecar(paths.embedding, inputs=inputs)
    provenance.write_sidecar(paths.latent_model("mlp"), "latent mlp", {}, run=RUN, history=1, lo=[0] * 3, hi=[1] * 3,
                             inputs={"embedding": provenance.check(paths, "embedding")["embedding"]})
    rewrite_sidecar(paths.embedding, inputs=inputs | {"latent mlp": {"file": "x", "sha256": "0" * 64}})
    user_error(lambda: provenance.check(paths, "latent mlp"), side, "cycle latent mlp -> embedding -> latent mlp",
             "embed_audio.py")


# ---------------------------------------------------------------- 5. a file where a folder should be

@pytest.mark.parametrize("script, blocked", [
    ("save_dataset.py", "data/song"),                      # the song's folder
    ("save_dataset.py", "data"),                           # the data folder itself
    ("embed_audio.py", "data/song/runs"),                  # where the run's folder goes
    ("embed_audio.py", f"out/song/{RUN}"),                 # the run's pictures
    ("play_embedding.py", f"out/song/{RUN}"),              # the player page's folder
    ("play_embedding.py", "out"),                          # the folder of plotly.min.js (and of every page)
])
def test_a_file_where_a_folder_should_be_is_one_line_and_stays(fake_run, song, tmp_path, script, blocked):
    paths = fake_run
    in_the_way = tmp_path / blocked
    if in_the_way.exists():
        os.rename(in_the_way, tmp_path / "moved-away")
    in_the_way.parent.mkdir(parents=True, exist_ok=True)
    in_the_way.write_bytes(b"not a folder")
    extra = ["--format", "html"] if script == "play_embedding.py" else []
    one_line_error(run_script(script, "--song", song, *common(paths.data, paths.outputs), *extra),
                  f"{in_the_way} is a file, not a folder", "move it away")
    assert in_the_way.read_bytes() == b"not a folder"
