"""Provenance: what an artifact was made from, recorded beside it and checked.

Every artifact has a JSON sidecar (``<file>.json``, `dae.layout.sidecar_path`)
with its kind, the settings and package versions that made it, the sha256 of
its own bytes and the sha256 of every input it was made from (audio,
spectrogram, encoder, embedding, latent model), and the sha256 of the record
itself, so that an edited fact is refused like an edited file
(`write_sidecar`, `read_sidecar`). `check` verifies an artifact and,
recursively, the whole chain it was made from against the files there now; a
stale or foreign input, or a record that names an unknown input or a cycle,
ends the stage with one line naming the stage to rerun. `arrays` and
`load_keras` read what was checked.
"""
import contextlib
import datetime
import functools
import hashlib
import io
import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

from dae import layout, store
from dae.errors import UserError, first_line

# ---------------------------------------------------------------- sidecars

_PACKAGES = ("numpy", "scipy", "tensorflow-cpu", "tensorflow", "keras", "matplotlib",
             "scikit-learn", "imageio", "imageio-ffmpeg", "plotly")

# The script that makes each kind of artifact: the stage a stale one names (a source's stage-1
# record, the spectrogram or a video's frames, is its `dae.sources.Source`'s: `maker`).
MAKERS = {"audio": "save_dataset.py", "encoder": "train_model.py",
          "decoder": "train_model.py", "forecaster": "train_model.py", "embedding": "embed_audio.py",
          "latent mlp": "train_latent_mlp.py", "latent lstm": "train_latent_lstm.py",
          "knn forecast": "forecast_knn.py", "knn-original forecast": "forecast_knn.py",
          "mlp forecast": "forecast_mlp.py", "lstm forecast": "forecast_lstm.py",
          "divergence": "divergence.py", "video": "play_embedding.py"}
MODEL_PARTS = ("encoder", "decoder", "forecaster")

# Facts the loaders rely on, by kind (a record without them is refused, not half-used; a source's
# stage-1 record: its Source's `record_facts`).
REQUIRED_FACTS = {
    "encoder": ("run", "model_id", "unit", "width", "height", "latent_dim", "scale_min", "scale_max",
                "sample_rate", "architecture"),
    "decoder": ("run", "model_id", "unit"),
    "forecaster": ("run", "model_id", "unit"),
    "embedding": ("run", "architecture", "latent_dim", "width", "sample_rate", "points_per_second"),
    "latent mlp": ("run", "history", "lo", "hi"),
    "latent lstm": ("run", "history", "lo", "hi"),
    "divergence": ("run", "architecture", "latent_dim", "rule", "exclusion_radius", "turning_angle_deg",
                   "delta_at", "growth_per_step", "growth_per_second"),
}
_NUMBERS = {"fps", "n_frames", "frame_size", "frame_step", "sample_rate", "duration_s", "n_time", "window_width", "width", "height", "latent_dim",
            "scale_min", "scale_max", "points_per_second", "history", "turning_angle_deg",
            "growth_per_step", "growth_per_second"}


@functools.lru_cache(maxsize=1)
def code_hash():
    """sha256 of this package's code (every dae/*.py and dae/player.html, by name and bytes): which
    version of the project made an artifact, so that a stage never reuses what older code made."""
    h = hashlib.sha256()
    folder = Path(__file__).resolve().parent
    for f in sorted([*folder.glob("*.py"), folder / "player.html"]):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def versions():
    """Python and package versions and the project's code (`code_hash`), for the record (looked up
    once per process, as the packages a process has imported stay the ones it runs)."""
    return dict(_versions()) | {"dae": code_hash()}


@functools.lru_cache(maxsize=1)
def _versions():
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def file_hash(path, chunk=1 << 20):
    """SHA-256 of a file's bytes (hex), to tie artifacts to their source."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def source_hash(path):
    """sha256 of a video file, or of a frame folder's file names and bytes, in frame order."""
    path = Path(path)
    if path.is_file():
        return file_hash(path)
    h = hashlib.sha256()
    for f in layout.folder_images(path):
        h.update(f.name.encode() + b"\0" + bytes.fromhex(file_hash(f)))
    return h.hexdigest()


def _source(kind):
    """The `dae.sources.Source` whose stage-1 record is of `kind` ("spectrogram", "frames"), or None."""
    from dae import sources
    return sources.by_record_kind().get(kind)


def _maker(kind):
    """The script that makes an artifact of `kind`, or None for a kind this project does not keep."""
    source = _source(kind)
    return source.maker if source is not None else MAKERS.get(kind)


def rerun(kind):
    """How to remake an artifact of `kind`, for error messages."""
    return f"`python {_maker(kind) or 'the stage that made it'}` with the same settings"


def _input_record(source):
    """{file, sha256} of an input given as a checked record (dict), (path, sha256) or a path."""
    if isinstance(source, dict):
        return {"file": str(source["path"]), "sha256": source["sha256"]}
    if isinstance(source, tuple):
        return {"file": str(source[0]), "sha256": source[1]}
    return {"file": str(source), "sha256": file_hash(source)}


RECORD_HASH = "record_sha256"


def record_hash(record):
    """SHA-256 (hex) of a sidecar record's own facts: the canonical JSON (sorted keys,
    no spaces) of every field but RECORD_HASH, taken as it reads back from the file."""
    facts = json.loads(json.dumps({k: v for k, v in record.items() if k != RECORD_HASH}, default=store.jsonable))
    return hashlib.sha256(json.dumps(facts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_sidecar(path, kind, settings, inputs=None, **facts):
    """Record what made the artifact at `path`: its kind, settings, facts, versions,
    the sha256 of its bytes and of each input it was made from, and the sha256 of
    the record itself (RECORD_HASH), so that an edited fact is refused like an
    edited artifact.

    path : the artifact, or the temporary it is written to (`store.temporary_name`;
        the record names the file it is committed as).
    inputs : {role: checked record (see `check`) | (path, sha256) | path}; the
        roles are the kinds of the inputs ('audio', 'spectrogram', 'encoder', ...).
    """
    record = {
        "kind": kind,
        "file": store.final_name(path).name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "versions": versions(),
        "sha256": file_hash(path),
        "inputs": {role: _input_record(src) for role, src in (inputs or {}).items()},
        **facts,
    }
    record[RECORD_HASH] = record_hash(record)
    store.save_json(layout.sidecar_path(path), record)


def read_sidecar(path, kind, missing_hint):
    """Load the sidecar of `path`, checking the artifact exists, is a `kind`, that
    the record has the shape the loaders rely on and is as it was written (its
    RECORD_HASH).

    missing_hint : str, what to run to make it (used in the error message).
    Returns the record with "path" (the artifact's Path) added.
    """
    path = Path(path)
    side = layout.sidecar_path(path)
    if not path.exists() or not side.exists():
        raise UserError(f"{path} does not exist yet: {missing_hint}")
    remake = f"remake it: {rerun(kind)}"
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{side} is unreadable ({first_line(e)}); {remake}") from None
    if not isinstance(meta, dict):
        raise UserError(f"{side} is not a record (a JSON {type(meta).__name__}, not an object); {remake}")
    if meta.get("kind") != kind:
        raise UserError(f"{path} holds a {meta.get('kind')!r}, expected a {kind!r}; {remake}")
    shape = {"settings": dict, "sha256": str, "inputs": dict, RECORD_HASH: str}
    bad = [k for k, t in shape.items() if not isinstance(meta.get(k), t)]
    source = _source(kind)
    required = source.record_facts if source is not None else REQUIRED_FACTS.get(kind, ())
    bad += [k for k in required if k not in meta]
    bad += [k for k in required if k in meta and k in _NUMBERS and not _is_number(meta[k])]
    bad += [f"inputs.{r}" for r, rec in meta.get("inputs", {}).items()
            if not (isinstance(rec, dict) and isinstance(rec.get("sha256"), str))] \
        if isinstance(meta.get("inputs"), dict) else []
    if bad:
        raise UserError(f"{side} lacks or garbles {', '.join(bad)} (damaged, or made by an older version "
                        f"without provenance); {remake}")
    if record_hash(meta) != meta[RECORD_HASH]:
        raise UserError(f"{side} has been edited or damaged since it was written (its facts do not match its "
                        f"{RECORD_HASH}); {remake}")
    meta["path"] = path
    return meta


def _is_number(x):
    if isinstance(x, list):
        return all(_is_number(v) for v in x)
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# ---------------------------------------------------------------- checking a chain

def check(paths, kind, path=None, need_audio=False):
    """Check the artifact of `kind` (at `path`, or where `paths` puts it) and the
    whole chain it was made from, against the files there now.

    Each artifact's bytes must match the sha256 in its sidecar, and each input's
    current bytes the sha256 the artifact recorded for it; a run's artifacts must
    belong to `paths.run`; a model's three parts must come from one save. The
    earliest stale link is reported, naming the stage to rerun. The audio is
    checked when it is where the spectrogram says (and must be, with `need_audio`).

    Returns {kind: checked record} for the whole chain: each record is its
    sidecar plus "path" and, for .npz files, "blob" (the bytes that were hashed,
    so what is loaded is what was checked).
    """
    path = None if path is None else Path(path)
    folders = ([path.parent] if path is not None else []) + \
        ([paths.run_dir, paths.output_dir] if paths.run is not None else [])
    with contextlib.suppress(OSError):     # a reader that may not write reads what is there
        store.recover(*folders)            # a commit a crash left half done is completed first
    chain = {}
    _check(paths, kind, chain, need_audio, path or _locate(paths, kind, chain))
    return chain


# settings that change how a stage runs or talks, never what it makes
VOLATILE = frozenset({"SONG", "DATA_DIR", "OUTPUT_DIR", "VERBOSE", "PROGRESS", "WORKERS", "RESUME", "PLOT", "FORMAT"})


def up_to_date(paths, kind, settings=None, path=None, need_audio=False):
    """The checked chain of the `kind` artifact (at `path`, or where `paths` puts it) when a stage
    may keep it instead of making it again, else None.

    It may when `check` passes (its bytes and everything it was made from are as recorded, down to
    the audio), it was made by this code with these package versions (`versions`), and every one
    of `settings` (USER_NAME -> value; the VOLATILE ones aside) is recorded with the same value.
    """
    try:
        chain = check(paths, kind, path=path, need_audio=need_audio)
    except (UserError, OSError):
        return None
    record = chain[kind]
    recorded = record.get("settings", {})
    if record.get("versions") != versions():
        return None
    if any(name not in recorded or recorded[name] != value
           for name, value in (settings or {}).items() if name not in VOLATILE):
        return None
    return chain


def _locate(paths, kind, chain, rec=None):
    """Where the artifact of `kind` is (for an input, `rec` is its record there); None for a
    kind without a place: the caller must give the path."""
    source = _source(kind)
    if source is not None:
        return source.record_path(paths)
    if kind in MODEL_PARTS:
        if "model folder" not in chain:
            chain["model folder"] = layout.model_folder(paths)
        return chain["model folder"] / f"{kind}.keras"
    if kind == "embedding":
        return paths.embedding
    if kind in ("latent mlp", "latent lstm"):
        return paths.latent_model(kind.split()[1])
    if kind.endswith(" forecast") and paths.run is not None and isinstance((rec or {}).get("file"), str):
        return paths.run_dir / Path(rec["file"]).name      # a forecast a picture was drawn from
    if rec is None:
        raise ValueError(f"no fixed place for a {kind!r}: give its path")
    return None


def _input_path(paths, path, kind, role, rec, chain):
    """Where input `role` (its record `rec`) of the `kind` at `path` is. A role that names no
    kind of artifact kept for the run is a UserError naming the sidecar."""
    known = _maker(role) is not None
    if known and role in chain:
        return chain[role]["path"]
    where = _locate(paths, role, chain, rec) if known else None
    if where is None:
        raise UserError(f"{layout.sidecar_path(path)} names an unknown input role {role!r}; "
                        f"remake it: {rerun(kind)}")
    return where


def _check(paths, kind, chain, need_audio, path, checking=()):
    """Check the `kind` at `path` and its inputs into `chain`. checking : ((kind, path), ...)
    of the artifacts whose check led here, the first first (their inputs are not done yet)."""
    if kind in chain:
        return chain[kind]
    kinds = [k for k, _ in checking]
    if kind in kinds:
        cycle = " -> ".join(kinds[kinds.index(kind):] + [kind])
        raise UserError(f"{layout.sidecar_path(checking[-1][1])}: its input roles form a cycle {cycle}; "
                        f"remake it: {rerun(checking[-1][0])}")
    checking = (*checking, (kind, path))
    meta = read_sidecar(path, kind, f"run {rerun(kind)} first")
    # what it was made from first, so that the earliest stage to rerun is named
    for role, rec in meta["inputs"].items():
        if role in ("audio", "video"):
            _check_audio(path, rec, need_audio)
            continue
        _check(paths, role, chain, need_audio, _input_path(paths, path, kind, role, rec, chain), checking)
    for role, rec in meta["inputs"].items():
        if role not in ("audio", "video") and chain[role]["sha256"] != rec["sha256"]:
            raise UserError(f"{path} was made from another {role} than {chain[role]['path']} holds now "
                            f"(stale); rerun {rerun(kind)}, then the stages after it")
    blob = path.read_bytes() if path.suffix == ".npz" else None
    own = hashlib.sha256(blob).hexdigest() if blob is not None else file_hash(path)
    if own != meta["sha256"]:
        raise UserError(f"{path} does not match its record {layout.sidecar_path(path).name} (changed, damaged "
                        f"or copied in since it was made); rerun {rerun(kind)}")
    if paths.run is not None and "run" in meta and meta["run"] != paths.run:
        raise UserError(f"{path} belongs to run {meta['run']}, not {paths.run} (copied in from another run?); "
                        f"rerun {rerun(kind)}")
    if blob is not None:
        meta["blob"] = blob
    chain[kind] = meta
    if kind in MODEL_PARTS:
        _check_model_unit(paths, chain, need_audio, checking)
    return meta


def _check_audio(path, rec, need_audio):
    """The source a dataset was read from (an audio or video file, or a folder of frames)."""
    audio = Path(rec.get("file", ""))
    if not (audio.is_file() or audio.is_dir()):
        if need_audio:
            what = "audio" if path.name.startswith("spectrogram") else "source"
            raise UserError(f"the {what} {audio} that {path.name} was made from is missing; put it back, or run "
                            f"`python save_dataset.py --song <{what}>` and the later stages again")
        return
    if source_hash(audio) != rec["sha256"]:
        raise UserError(f"{audio} has changed since {path} was made from it; rerun `python save_dataset.py` "
                        "with the same --song, then the later stages")


def _check_model_unit(paths, chain, need_audio, checking=()):
    """The encoder, decoder and forecaster in the model folder come from one save."""
    for part in MODEL_PARTS:
        _check(paths, part, chain, need_audio, _locate(paths, part, chain), checking)
    ids = {chain[p]["model_id"] for p in MODEL_PARTS}
    units = [chain[p]["unit"] for p in MODEL_PARTS]
    if len(ids) != 1 or any(not isinstance(u, dict) or u.get(p) != chain[p]["sha256"]
                            for u in units for p in MODEL_PARTS):
        raise UserError(f"{chain['model folder']} mixes parts of different saves; retrain: "
                        "`python train_model.py --resume false` with the same settings")


def arrays(meta, required=()):
    """The arrays of a checked .npz record (from the bytes that were checked).

    Corrupt, truncated or pickled (object) archives and missing arrays are a
    UserError naming the stage to rerun.
    """
    path, kind = meta["path"], meta["kind"]
    blob = meta["blob"] if "blob" in meta else Path(path).read_bytes()
    try:
        archive = np.load(io.BytesIO(blob), allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with archive as d:
            out = {k: d[k] for k in d.files}
    except Exception as e:  # zipfile, zlib, format and pickle errors alike
        raise UserError(f"{path} is damaged or unreadable ({first_line(e)}); rerun {rerun(kind)}") from None
    missing = [k for k in required if k not in out]
    if missing:
        raise UserError(f"{path} lacks the arrays {', '.join(missing)}; rerun {rerun(kind)}")
    return out


def load_keras(meta, compile=False):
    """The Keras model of a checked record; a damaged or foreign file is a UserError."""
    import keras
    try:
        return keras.models.load_model(meta["path"], compile=compile)
    except Exception as e:
        raise UserError(f"{meta['path']} could not be loaded ({type(e).__name__}: {first_line(e)}); "
                        f"rerun {rerun(meta['kind'])}") from None
