"""Where every artifact lives, how it is written, what it records and how it is checked.

Layout (one folder per song, one per training run, so that R and R-F, 0.5 s
and 2 s, 3-D and 12-D results sit side by side and never overwrite each other)::

    data/<song>.wav                          the audio (the demo song is made here)
    data/<song>/spectrogram.npz (+ .json)    stage 1
    data/<song>/runs/<run>/                  stage 2: checkpoint.npz, history.csv and the
        model -> model-<id>                  committed model: a symlink to one complete folder
        model-<id>/{encoder,decoder,forecaster}.keras (+ .json)   (the run's record is encoder.keras.json)
    data/<song>/runs/<run>/embedding.npz     stage 3 (+ .json)
    outputs/<song>/spectrogram.png
    outputs/<song>/<run>/trajectory.png, trajectory_sections.png, trajectory.html, trajectory.mp4
    data/<song>/runs/<run>/latent_{mlp,lstm}.keras, forecast_*.npz, divergence_*.npz
    outputs/<song>/<run>/forecast_*.png, .html; outputs/<song>/divergence.png (notebook)

Provenance: every artifact has a JSON sidecar (``<file>.json``) with its kind,
the settings and package versions that made it, the sha256 of its own bytes
and the sha256 of every input it was made from (audio, spectrogram, encoder,
embedding, latent model), and the sha256 of the record itself, so that an
edited fact is refused like an edited file. `check` verifies an artifact and,
recursively, the whole chain it was made from against the files there now; a
stale or foreign input, or a record that names an unknown input or a cycle,
ends the stage with one line naming the stage to rerun.

Writing: files are written to a temporary name (``.tmp<pid>-<name>``) and
renamed; a trained model is written into a temporary folder, renamed to
``model-<id>`` and published by atomically replacing the ``model`` symlink, so
its three files and sidecars appear together or not at all. Files drawn
together (a run's pictures, a forecast's arrays and pictures, the player page
with its audio, the MP4) are written to temporaries with their sidecars and
published by a journal (`group_commit`, ``.commit.json``), which the next
writer or reader completes after a crash. A stage holds an
flock on its folder's ``.lock`` (never through a link) while it writes, and
removes the temporary files of dead processes first. A file where a folder
should be is one line naming it (`make_folder`).
"""
import contextlib
import datetime
import errno
import fcntl
import hashlib
import io
import json
import os
import platform
import re
import shutil
import stat
import uuid
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np

from dae.errors import UserError

# File names taken as a song's audio: every audio container and codec the bundled ffmpeg
# decodes, and video files with a sound track. (An existing file is read whatever its
# suffix; this list names songs and finds data/<song>.<ext>, in this order of preference.)
AUDIO_SUFFIXES = (
    ".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".m4b", ".aac", ".adts", ".aif", ".aiff",
    ".aifc", ".wma", ".wv", ".ape", ".apl", ".mac", ".mpc", ".mka", ".mp2", ".m2a", ".mpa", ".ac3",
    ".eac3", ".ec3", ".dts", ".thd", ".mlp", ".tta", ".amr", ".awb", ".au", ".snd", ".caf", ".w64",
    ".rf64", ".bwf", ".voc", ".gsm", ".sln", ".spx", ".dsf", ".dff", ".shn", ".ra", ".ram",
    # video containers (their sound track is read)
    ".mp4", ".m4v", ".mov", ".mkv", ".mk3d", ".webm", ".avi", ".flv", ".f4v", ".wmv", ".asf", ".mpg",
    ".mpeg", ".vob", ".ts", ".m2ts", ".mts", ".3gp", ".3g2", ".ogv", ".mj2", ".psp", ".ism", ".ismv",
    ".isma", ".rm", ".rmvb", ".dv",
)


# ---------------------------------------------------------------- writing

TMP_PREFIX = ".tmp"
_TMP = re.compile(r"^\.tmp(\d+)-")


def temporary_name(path):
    """`.tmp<pid>-<name>` beside `path`: recognisably ours, and whose once we are dead."""
    path = Path(path)
    return path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")


def final_name(path):
    """The path a temporary (`temporary_name`) is committed to; any other path as it is."""
    path = Path(path)
    return path.with_name(_TMP.sub("", path.name, count=1))


FOLDER_HINT = "move it away, or choose another --data-dir or --output-dir"


def make_folder(path):
    """Make the folder `path` and its parents (an existing folder is fine); returns it as a Path.

    Whatever is in the way (a file where a folder should be, a link to nowhere,
    no permission) is a one-line UserError naming the path and what is there;
    nothing is moved or overwritten.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(_in_the_way(path) or f"cannot make the folder {path} ({e.strerror or _first_line(e)}): "
                        f"check the permissions and free space of {path.parent}, or choose another "
                        "--data-dir or --output-dir") from None
    return path


def check_folder(path):
    """Refuse, before any work, a `path` where `make_folder` would find something in the way;
    makes nothing."""
    why = _in_the_way(Path(path))
    if why:
        raise UserError(why)


def _in_the_way(path):
    """What keeps `path` from being a folder: the first of it and its ancestors that exists and
    is no folder (a file, a link to nowhere, a pipe), as a line for the user; None if nothing."""
    for p in (*reversed(path.parents), path):
        try:
            if p.is_symlink() and not p.exists():
                return f"{p} is a link to {os.readlink(p)}, which does not exist, not a folder: {FOLDER_HINT}"
            if p.exists() and not p.is_dir():
                what = "a file" if p.is_file() else "neither a file nor a folder (a pipe, socket or device)"
                return f"{p} is {what}, not a folder: {FOLDER_HINT}"
        except OSError:
            return None
    return None


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path`; rename it over `path` on success.

    The temporary name keeps the whole file name as its ending (libraries such
    as Keras insist on ``.keras`` / ``.weights.h5``). On error it is removed and
    `path` is left as it was.
    """
    path = Path(path)
    make_folder(path.parent)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_npz(path, **arrays):
    """Write arrays to `path` (.npz) atomically and reproducibly.

    Unlike np.savez, the archive carries no time stamps, so the same arrays
    always give the same bytes (and sha256): saving a song again from the same
    audio does not make everything made from it look stale. Object arrays are
    refused (nothing is ever pickled).
    """
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, value in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with archive.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)


def save_text(path, text):
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def save_json(path, obj):
    save_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(*folders):
    """Delete ``.tmp<pid>-*`` files and folders in `folders` whose process is dead; returns them."""
    removed = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            m = _TMP.match(p.name)
            if m is None or _alive(int(m.group(1))):
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


# ---------------------------------------------------------------- several files as one unit

JOURNAL_NAME = ".commit.json"


class Group:
    """The files of one `group_commit`: {final path: the temporary it is written to}, and
    the files the new state no longer has."""

    def __init__(self):
        self.staged, self.dropped = {}, []

    def stage(self, path):
        """The temporary to write `path` to (its folder made); its sidecar goes beside it
        (``write_sidecar(group.stage(path), ...)``). The same path gives the same temporary."""
        path = Path(path)
        if path not in self.staged:
            make_folder(path.parent)
            self.staged[path] = temporary_name(path)
        return self.staged[path]

    def drop(self, path):
        """Remove `path` and its sidecar in the same commit (a file the new state has not)."""
        self.dropped.append(Path(path))


@contextlib.contextmanager
def group_commit():
    """Publish several files, each with its sidecar, as one unit (in one folder or several).

    Yields a `Group`: write each file at ``group.stage(path)`` and its sidecar
    with ``write_sidecar`` on that temporary; ``group.drop(path)`` removes a file
    of the old state. On success a journal (JOURNAL_NAME, in the first file's
    folder) listing every rename and removal is written atomically -- the commit
    point -- then they are done and the journal deleted. A crash before the
    journal leaves the old files (the temporaries are stale and removed); after
    it, the next writer (`writing`) or reader (`check`) completes the journal
    (`recover`). So every moment shows the old complete set or the new one, each
    file beside its own sidecar. On error nothing is published.
    """
    group, journal = Group(), None
    try:
        yield group
        journal = _write_journal(group)
    finally:
        if journal is None:
            for tmp in group.staged.values():
                tmp.unlink(missing_ok=True)
                sidecar_path(tmp).unlink(missing_ok=True)
    if journal is not None:
        _complete(journal)


def _write_journal(group):
    """Write the intent of `group` (renames [temporary, final], removals; relative to the
    journal's folder) atomically; returns the journal's path, or None for an empty group."""
    moves = []
    for path, tmp in group.staged.items():
        if not tmp.is_file():
            raise FileNotFoundError(f"{path} was staged but its temporary {tmp.name} was never written")
        moves.append((tmp, path))
        if sidecar_path(tmp).exists():
            moves.append((sidecar_path(tmp), sidecar_path(path)))
    removes = [p for path in group.dropped if path not in group.staged
               for p in (path, sidecar_path(path)) if p.exists() or p.is_symlink()]
    for _, target in moves:     # a rename that cannot be done is refused before the commit point
        if target.is_dir() and not target.is_symlink():
            raise UserError(f"{target} is a folder where a file should be: move it away, then run the same "
                            "command again")
    if not moves and not removes:
        return None
    folder = (moves[0][1] if moves else removes[0]).parent
    for src, _ in moves:
        _fsync(src)
    journal = folder / JOURNAL_NAME
    here = folder.resolve()

    def rel(p):
        return os.path.relpath(p.parent.resolve() / p.name, here)
    save_json(journal, {"pid": os.getpid(), "moves": [[rel(a), rel(b)] for a, b in moves],
                        "removes": [rel(p) for p in removes]})
    _fsync(folder, directory=True)
    return journal


def _complete(journal):
    """Do what the journal at `journal` lists (what is done already is skipped), then delete it."""
    folder = journal.parent
    try:
        intent = json.loads(journal.read_text())
        moves = [(folder / a, folder / b) for a, b in intent["moves"]]
        removes = [folder / p for p in intent["removes"]]
    except FileNotFoundError:
        return                      # completed by another process meanwhile
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{journal} is unreadable ({_first_line(e)}): remove it, then run the stage that writes "
                        f"{folder} again") from None
    for src, dst in moves:
        with contextlib.suppress(FileNotFoundError):
            os.replace(src, dst)
    for p in removes:
        p.unlink(missing_ok=True)
    for d in {p.parent for _, p in moves} | {p.parent for p in removes}:
        _fsync(d, directory=True)
    journal.unlink(missing_ok=True)


def recover(*folders):
    """Complete a commit (`group_commit`) that a dead process left half done in any of
    `folders` (its journal is there); a live writer's is left to it. Returns the
    journals completed."""
    done = []
    for folder in folders:
        journal = Path(folder) / JOURNAL_NAME
        if not journal.is_file():
            continue
        try:
            pid = int(json.loads(journal.read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            pid = None                                  # unreadable: `_complete` says so
        if pid is not None and pid != os.getpid() and _alive(pid):
            continue
        _complete(journal)
        done.append(journal)
    return done


# ---------------------------------------------------------------- locks

LOCK_NAME = ".lock"


def _holder(lock_file):
    try:
        info = json.loads(Path(lock_file).read_text())
        return (f"process {int(info['pid'])} ({info['stage']}, since {info['since']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _open_lock(lock_file):
    """Open (or create) `lock_file` for writing without following a link; returns the fd.

    A link or anything but a plain file there is a UserError naming it: writing
    the holder's pid through a link would overwrite the file it points to.
    """
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP or os.path.islink(lock_file):
            raise UserError(f"{lock_file} is a symbolic link, not a lock file (a stage never writes through "
                            "one): remove the link, then run this again") from None
        if e.errno == errno.EISDIR:
            raise UserError(f"{lock_file} is a folder, not a lock file: move it away, then run this again") from None
        raise UserError(f"cannot open the lock file {lock_file} ({e.strerror or _first_line(e)}): check the "
                        f"permissions of {lock_file.parent}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"{lock_file} is not a plain file (a pipe, socket or device), so not a lock file: "
                        "remove it, then run this again")
    return fd


@contextlib.contextmanager
def locked(folder, stage):
    """Hold an exclusive flock on `folder`/.lock while a stage writes into `folder`.

    A second writer gets a UserError naming the process that holds it. The lock
    goes with the process (a killed holder frees it); the file itself stays.
    A symbolic link or anything but a plain file at .lock is refused, never followed.
    """
    folder = Path(folder)
    created, top = not folder.exists(), folder
    while not top.parent.exists():
        top = top.parent
    make_folder(folder)
    lock_file = folder / LOCK_NAME
    fd = _open_lock(lock_file)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{folder} is being written by {_holder(lock_file)}; wait for it to finish "
                            "(or stop it), then run this again") from None
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "stage": stage, "since": now}).encode(), 0)
        yield lock_file
        created = created and [p.name for p in folder.iterdir()] == [LOCK_NAME]
    except BaseException:
        created = created and [p.name for p in folder.iterdir()] == [LOCK_NAME]
        raise
    finally:
        if created:  # a stage that failed before writing anything leaves no empty folder behind
            lock_file.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                for p in (folder, *folder.parents):
                    p.rmdir()
                    if p == top:
                        break
        os.close(fd)


@contextlib.contextmanager
def writing(paths, stage):
    """What a stage does around its writes: lock its folder (the run's, or the song's
    for stage 1), complete a commit a crashed process left half done there and in
    its outputs (`recover`) and remove the temporaries crashed processes left."""
    folder = paths.run_dir if paths.run is not None else paths.song_dir
    outputs = paths.output_dir if paths.run is not None else paths.outputs / paths.song
    with locked(folder, stage) as lock_file:
        recover(folder, outputs)                   # before the temporaries a journal names are removed
        remove_stale_temporaries(folder, outputs)
        yield lock_file


# ---------------------------------------------------------------- sidecars

_PACKAGES = ("numpy", "scipy", "tensorflow-cpu", "tensorflow", "keras", "matplotlib",
             "scikit-learn", "imageio", "imageio-ffmpeg", "plotly")

# The script that makes each kind of artifact: the stage a stale one names.
MAKERS = {"audio": "save_dataset.py", "spectrogram": "save_dataset.py", "encoder": "train_model.py",
          "decoder": "train_model.py", "forecaster": "train_model.py", "embedding": "embed_audio.py",
          "latent mlp": "train_latent_mlp.py", "latent lstm": "train_latent_lstm.py",
          "knn forecast": "forecast_knn.py", "knn-original forecast": "forecast_knn.py",
          "mlp forecast": "forecast_mlp.py", "lstm forecast": "forecast_lstm.py",
          "divergence": "divergence.py", "video": "play_embedding.py", "frames": "save_dataset.py --source video"}
MODEL_PARTS = ("encoder", "decoder", "forecaster")

# Facts the loaders rely on, by kind (a record without them is refused, not half-used).
REQUIRED_FACTS = {
    "spectrogram": ("source", "source_sha256", "sample_rate", "duration_s", "n_time", "window_width"),
    "frames": ("source", "source_sha256", "fps", "duration_s", "n_frames", "frame_size", "frame_step"),
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


def versions():
    """Python and package versions, for the record."""
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def sidecar_path(path):
    path = Path(path)
    return path.with_name(path.name + ".json")


def file_hash(path, chunk=1 << 20):
    """SHA-256 of a file's bytes (hex), to tie artifacts to their source."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def rerun(kind):
    """How to remake an artifact of `kind`, for error messages."""
    return f"`python {MAKERS.get(kind, 'the stage that made it')}` with the same settings"


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
    facts = json.loads(json.dumps({k: v for k, v in record.items() if k != RECORD_HASH}, default=_jsonable))
    return hashlib.sha256(json.dumps(facts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_sidecar(path, kind, settings, inputs=None, **facts):
    """Record what made the artifact at `path`: its kind, settings, facts, versions,
    the sha256 of its bytes and of each input it was made from, and the sha256 of
    the record itself (RECORD_HASH), so that an edited fact is refused like an
    edited artifact.

    path : the artifact, or the temporary it is written to (`temporary_name`;
        the record names the file it is committed as).
    inputs : {role: checked record (see `check`) | (path, sha256) | path}; the
        roles are the kinds of the inputs ('audio', 'spectrogram', 'encoder', ...).
    """
    record = {
        "kind": kind,
        "file": final_name(path).name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "versions": versions(),
        "sha256": file_hash(path),
        "inputs": {role: _input_record(src) for role, src in (inputs or {}).items()},
        **facts,
    }
    record[RECORD_HASH] = record_hash(record)
    save_json(sidecar_path(path), record)


def read_sidecar(path, kind, missing_hint):
    """Load the sidecar of `path`, checking the artifact exists, is a `kind`, that
    the record has the shape the loaders rely on and is as it was written (its
    RECORD_HASH).

    missing_hint : str, what to run to make it (used in the error message).
    Returns the record with "path" (the artifact's Path) added.
    """
    path = Path(path)
    side = sidecar_path(path)
    if not path.exists() or not side.exists():
        raise UserError(f"{path} does not exist yet: {missing_hint}")
    remake = f"remake it: {rerun(kind)}"
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{side} is unreadable ({_first_line(e)}); {remake}") from None
    if not isinstance(meta, dict):
        raise UserError(f"{side} is not a record (a JSON {type(meta).__name__}, not an object); {remake}")
    if meta.get("kind") != kind:
        raise UserError(f"{path} holds a {meta.get('kind')!r}, expected a {kind!r}; {remake}")
    shape = {"settings": dict, "sha256": str, "inputs": dict, RECORD_HASH: str}
    bad = [k for k, t in shape.items() if not isinstance(meta.get(k), t)]
    bad += [k for k in REQUIRED_FACTS.get(kind, ()) if k not in meta]
    bad += [k for k in REQUIRED_FACTS.get(kind, ()) if k in meta and k in _NUMBERS and not _is_number(meta[k])]
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


def _first_line(e):
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:160]


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
        recover(*folders)                  # a commit a crash left half done is completed first
    chain = {}
    _check(paths, kind, chain, need_audio, path or _locate(paths, kind, chain))
    return chain


def _locate(paths, kind, chain, rec=None):
    """Where the artifact of `kind` is (for an input, `rec` is its record there); None for a
    kind without a place: the caller must give the path."""
    if kind == "spectrogram":
        return paths.spectrogram
    if kind == "frames":
        if paths.frames is None:
            raise UserError(f"{paths.run or paths.song} is not a video run; give --source video")
        return paths.frames
    if kind in MODEL_PARTS:
        if "model folder" not in chain:
            chain["model folder"] = model_folder(paths)
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
    if role in MAKERS and role in chain:
        return chain[role]["path"]
    where = _locate(paths, role, chain, rec) if role in MAKERS else None
    if where is None:
        raise UserError(f"{sidecar_path(path)} names an unknown input role {role!r}; remake it: {rerun(kind)}")
    return where


def _check(paths, kind, chain, need_audio, path, checking=()):
    """Check the `kind` at `path` and its inputs into `chain`. checking : ((kind, path), ...)
    of the artifacts whose check led here, the first first (their inputs are not done yet)."""
    if kind in chain:
        return chain[kind]
    kinds = [k for k, _ in checking]
    if kind in kinds:
        cycle = " -> ".join(kinds[kinds.index(kind):] + [kind])
        raise UserError(f"{sidecar_path(checking[-1][1])}: its input roles form a cycle {cycle}; "
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
        raise UserError(f"{path} does not match its record {sidecar_path(path).name} (changed, damaged or "
                        f"copied in since it was made); rerun {rerun(kind)}")
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
    from dae.frames import source_hash
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
        raise UserError(f"{path} is damaged or unreadable ({_first_line(e)}); rerun {rerun(kind)}") from None
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
        raise UserError(f"{meta['path']} could not be loaded ({type(e).__name__}: {_first_line(e)}); "
                        f"rerun {rerun(meta['kind'])}") from None


# ---------------------------------------------------------------- the committed model

MODEL_LINK = "model"


def model_folder(paths):
    """The folder of the run's committed model (where the `model` symlink points now)."""
    try:
        return paths.model_dir.resolve(strict=True)
    except (FileNotFoundError, RuntimeError, OSError):
        pass
    if (paths.run_dir / "encoder.keras").exists():
        raise UserError(f"{paths.run_dir} holds a model saved by an older version of this project (no provenance); "
                        "retrain it: `python train_model.py --resume false` with the same settings")
    raise UserError(f"{paths.encoder} does not exist yet: no trained model for {paths.run}; "
                    "run `python train_model.py` with the same settings first")


def _fsync(path, directory=False):
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_model(paths, write):
    """Publish a trained model as one unit.

    write(folder, model_id) writes every file of the model (with sidecars) into
    a fresh temporary folder ``.tmp<pid>-model-<id>`` beside the run; the folder
    is renamed to ``model-<id>`` and the ``model`` symlink is atomically
    replaced to point at it (the commit point). A crash at any instant leaves
    the previous model (or none) in place, never a mix. Older folders, except
    the one just replaced (a reader may still be loading it), are removed.
    Returns the committed folder.
    """
    run_dir = make_folder(paths.run_dir)
    model_id = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    name = f"{MODEL_LINK}-{model_id}"
    tmp = run_dir / f"{TMP_PREFIX}{os.getpid()}-{name}"
    tmp.mkdir()
    try:
        write(tmp, model_id)
        for f in tmp.iterdir():
            _fsync(f)
        _fsync(tmp, directory=True)
        os.rename(tmp, run_dir / name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    link = paths.model_dir
    previous = os.readlink(link) if link.is_symlink() else None
    link_tmp = temporary_name(link)
    link_tmp.unlink(missing_ok=True)
    os.symlink(name, link_tmp)
    os.replace(link_tmp, link)                       # the commit point
    _fsync(run_dir, directory=True)
    for old in run_dir.glob(f"{MODEL_LINK}-*"):
        if old.name not in (name, previous) and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return run_dir / name


# ---------------------------------------------------------------- naming

def song_name(song):
    """The name artifacts are filed under: a path's stem, or the name itself.

    A path is an existing file (whatever its suffix) or a name ending in one of
    AUDIO_SUFFIXES (any case): ``path/to/My Song.m4a`` -> ``My Song``. Anything
    else is a name, which must not contain a folder.
    """
    text = str(song)
    given = Path(text)
    is_path = given.suffix.lower() in AUDIO_SUFFIXES or (bool(text) and given.is_file())
    name = given.stem if is_path else given.name if bool(text) and given.is_dir() else text
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise UserError(f"song {song!r} is not a usable name; give a name such as 'mysong' or the path of an "
                        "audio or video file, such as 'path/to/mysong.wav'")
    return name


def architecture_tag(alpha):
    """'R' for the plain autoencoder (alpha = 0), 'R-F' for the conditioned one."""
    return "R" if float(alpha) == 0 else "R-F"


def run_name(window_seconds, alpha, beta, gamma, delta, latent_dim, history, seed, horizon=1,
             horizon_decay=1.0, length_weight=1.0, frames=None):
    """A folder name that spells out every setting that shapes a trained model.

    The forecasting horizon and its two knobs appear only when the horizon is
    not 1, so one-step runs keep the names they always had. A video run
    (`frames`, e.g. '150x268_s1': frame size and step) starts with
    'v150x268s1' where an audio run names its window ('w0.5s').
    """
    window = f"v{frames.replace('_', '')}" if frames else f"w{float(window_seconds):g}s"
    name = (f"{window}_{architecture_tag(alpha)}"
            f"_a{float(alpha):g}_b{float(beta):g}_g{float(gamma):g}_d{float(delta):g}"
            f"_z{int(latent_dim)}_l{int(history)}_s{int(seed)}")
    if int(horizon) != 1:
        name += f"_h{int(horizon)}_hd{float(horizon_decay):g}_lw{float(length_weight):g}"
    return name


class Paths:
    """Every artifact path for one song (and, given run settings, one run)."""

    def __init__(self, song, data_dir="data", output_dir="outputs", run=None, frames=None):
        self.song = song_name(song)
        self.data = Path(data_dir)
        self.outputs = Path(output_dir)
        self.song_dir = self.data / self.song
        self.spectrogram = self.song_dir / "spectrogram.npz"
        self.spectrogram_png = self.outputs / self.song / "spectrogram.png"
        # a video's frames, read at one size and step (frames: '150x268_s1'); None for audio.
        # A video run's name says it ('v150x268s1_...'), so any Paths of that run finds its frames.
        m = re.match(r"v(\d+x\d+)s(\d+)_", run or "")
        if frames is None and m:
            frames = f"{m.group(1)}_s{m.group(2)}"
        self.frames_tag = frames
        self.frames = self.song_dir / f"frames_{frames}.npz" if frames else None
        self.frames_png = self.outputs / self.song / f"frames_{frames}.png" if frames else None
        self.run = run
        if run is not None:
            self.run_dir = self.song_dir / "runs" / run
            self.model_dir = self.run_dir / MODEL_LINK      # symlink to the committed model's folder
            self.encoder = self.model_dir / "encoder.keras"
            self.decoder = self.model_dir / "decoder.keras"
            self.forecaster = self.model_dir / "forecaster.keras"
            self.checkpoint_state = self.run_dir / "checkpoint.npz"
            self.history = self.run_dir / "history.csv"
            self.embedding = self.run_dir / "embedding.npz"
            self.output_dir = self.outputs / self.song / run
            self.trajectory_png = self.output_dir / "trajectory.png"
            self.trajectory_html = self.output_dir / "trajectory.html"
            self.trajectory_sections_png = self.output_dir / "trajectory_sections.png"
            self.video = self.output_dir / "trajectory.mp4"

    def latent_model(self, kind):
        """Stage 5: the latent MLP or LSTM ('mlp' / 'lstm')."""
        return self.run_dir / f"latent_{kind}.keras"

    def forecast(self, method, ic):
        """Stage 6: (arrays, picture, interactive page) of a forecast by `method` from index `ic`."""
        stem = f"forecast_{method}_ic{int(ic)}"
        return self.run_dir / f"{stem}.npz", self.output_dir / f"{stem}.png", self.output_dir / f"{stem}.html"

    def divergence(self, tag):
        """Stage 7: divergence curves for the KNN rule described by `tag`."""
        return self.run_dir / f"divergence_{tag}.npz"

    def audio_candidates(self, song):
        """Where the audio for `song` may be: the path itself (an existing file, or a
        name with an audio or video suffix), else every file data/<song>.<ext> with a
        suffix in AUDIO_SUFFIXES (any case), in that order of preference."""
        given = Path(str(song))
        if given.suffix.lower() in AUDIO_SUFFIXES or given.is_file():
            return [given]
        if not self.data.is_dir():
            return []
        import glob
        rank = {s: i for i, s in enumerate(AUDIO_SUFFIXES)}
        found = [p for p in self.data.glob(f"{glob.escape(self.song)}.*")
                 if p.stem == self.song and p.suffix.lower() in rank and p.is_file()]
        return sorted(found, key=lambda p: (rank[p.suffix.lower()], p.name))


# ---------------------------------------------------------------- run identity

RUN_SETTINGS = ("WINDOW_SECONDS", "ALPHA", "BETA", "GAMMA", "DELTA", "LATENT_DIM", "HISTORY", "SEED",
                "HORIZON", "HORIZON_DECAY", "LENGTH_WEIGHT")
SOURCE_SETTINGS = ("SOURCE", "FRAME_SIZE", "FRAME_STEP")   # audio or video; how a video's frames are read
SOURCES = ("audio", "video")
RUN_IDENTITY = ("SONG", "DATA_DIR", "OUTPUT_DIR") + RUN_SETTINGS + SOURCE_SETTINGS
_SELECTS = {
    "SONG": "the song (a name, or the audio file it was saved from)",
    "DATA_DIR": "the folder of arrays and models",
    "OUTPUT_DIR": "the folder of pictures and videos",
    "WINDOW_SECONDS": "the window it was trained with (s)",
    "ALPHA": "the forecasting-loss weight it was trained with (0 = R, > 0 = R-F)",
    "BETA": "the reconstruction-loss weight it was trained with",
    "GAMMA": "the off-centre-loss weight it was trained with",
    "DELTA": "the curvature-loss weight it was trained with",
    "LATENT_DIM": "the latent size it was trained with",
    "HISTORY": "the forecaster history it was trained with",
    "SEED": "the seed it was trained with",
    "HORIZON": "the forecasting horizon it was trained with (1 = one step)",
    "HORIZON_DECAY": "the weight decay over the horizon's steps it was trained with",
    "LENGTH_WEIGHT": "the displacement-length weight it was trained with (horizon > 1)",
    "SOURCE": "what it embeds: audio (the sound) or video (the pictures)",
    "FRAME_SIZE": "the frame size a video run's frames were read at (HEIGHTxWIDTH)",
    "FRAME_STEP": "the frame step a video run's frames were read with",
}


def select_run(namespace, shared):
    """Declare, in a later stage's `namespace` (its globals), the settings that
    select the run folder it reads, with the shared defaults of module `shared`
    (settings.py) and a --help that says they only select the run.

    This is the one place a script's run identity comes from; `run_paths` reads
    those names from the parsed settings. Returns `namespace`, for
    ``cli.configure(artifacts.select_run(globals(), settings))``.
    """
    for name in RUN_IDENTITY:
        namespace.setdefault(name, getattr(shared, name))
    notes = namespace.setdefault("__notes__", {})
    for name in RUN_IDENTITY:
        notes.setdefault(name, f"selects the run: {_SELECTS[name]}")
    return namespace


def source_frames(settings):
    """The frames tag ('150x268_s1') of the settings' source, or None for audio.

    SOURCE, FRAME_SIZE and FRAME_STEP default to audio when a caller leaves them out.
    """
    source = settings.get("SOURCE", "audio")
    if source not in SOURCES:
        raise UserError(f"SOURCE={source!r} is not one of {', '.join(SOURCES)}")
    if source == "audio":
        return None
    from dae.frames import frames_tag
    step = int(settings.get("FRAME_STEP", 1))
    if step < 1:
        raise UserError(f"FRAME_STEP={step} must be at least 1")
    return frames_tag(settings.get("FRAME_SIZE", "150x268"), step)


def run_paths(settings):
    """Paths of the run that `settings` (a script's parsed settings) describe."""
    missing = [k for k in RUN_IDENTITY if k not in settings and k not in SOURCE_SETTINGS]
    if missing:
        raise TypeError(f"run_paths needs {', '.join(missing)}: declare them with artifacts.select_run")
    frames = source_frames(settings)
    name = run_name(*(settings[k] for k in RUN_SETTINGS), frames=frames)
    return Paths(settings["SONG"], settings["DATA_DIR"], settings["OUTPUT_DIR"], run=name, frames=frames)
