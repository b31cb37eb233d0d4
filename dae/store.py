"""Writing files safely: atomic renames, several files as one unit, locks, folders.

Files are written to a temporary name (``.tmp<pid>-<name>``) and renamed; a
trained model is written into a temporary folder, renamed to ``model-<id>``
and published by atomically replacing the ``model`` symlink (`commit_model`),
so its three files and sidecars appear together or not at all. Files drawn
together (a run's pictures, a forecast's arrays and pictures, the player page
with its audio, the MP4) are written to temporaries with their sidecars and
published by a journal (`group_commit`, ``.commit.json``), which the next
writer or reader completes after a crash (`recover`). A stage holds an flock
on its folder's ``.lock`` (never through a link) while it writes, and removes
the temporary files of dead processes first (`writing`). A file where a folder
should be is one line naming it (`make_folder`).
"""
import contextlib
import datetime
import errno
import fcntl
import json
import os
import re
import shutil
import stat
import uuid
import zipfile
from pathlib import Path

import numpy as np

from dae import layout
from dae.errors import UserError, first_line

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
        raise UserError(_in_the_way(path) or f"cannot make the folder {path} ({e.strerror or first_line(e)}): "
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
    save_text(path, json.dumps(obj, indent=2, sort_keys=True, default=jsonable) + "\n")


def jsonable(x):
    """The JSON value of a numpy number or array or a Path (`json.dumps`' default); TypeError for others."""
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
        (``provenance.write_sidecar(group.stage(path), ...)``). The same path gives the same temporary."""
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
    with ``provenance.write_sidecar`` on that temporary; ``group.drop(path)``
    removes a file of the old state. On success a journal (JOURNAL_NAME, in the
    first file's folder) listing every rename and removal is written atomically
    -- the commit point -- then they are done and the journal deleted. A crash
    before the journal leaves the old files (the temporaries are stale and
    removed); after it, the next writer (`writing`) or reader
    (`provenance.check`) completes the journal (`recover`). So every moment
    shows the old complete set or the new one, each file beside its own
    sidecar. On error nothing is published.
    """
    group, journal = Group(), None
    try:
        yield group
        journal = _write_journal(group)
    finally:
        if journal is None:
            for tmp in group.staged.values():
                tmp.unlink(missing_ok=True)
                layout.sidecar_path(tmp).unlink(missing_ok=True)
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
        if layout.sidecar_path(tmp).exists():
            moves.append((layout.sidecar_path(tmp), layout.sidecar_path(path)))
    removes = [p for path in group.dropped if path not in group.staged
               for p in (path, layout.sidecar_path(path)) if p.exists() or p.is_symlink()]
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
        raise UserError(f"{journal} is unreadable ({first_line(e)}): remove it, then run the stage that writes "
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
        raise UserError(f"cannot open the lock file {lock_file} ({e.strerror or first_line(e)}): check the "
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


# ---------------------------------------------------------------- the committed model

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
    name = f"{layout.MODEL_LINK}-{model_id}"
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
    for old in run_dir.glob(f"{layout.MODEL_LINK}-*"):
        if old.name not in (name, previous) and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return run_dir / name
