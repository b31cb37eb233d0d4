"""Where every artifact lives, how it is written, and what it records.

Layout (one folder per song, one per training run, so that R and R-F, 0.5 s
and 2 s, 3-D and 12-D results sit side by side and never overwrite each other)::

    data/<song>.wav                          the audio (the demo song is made here)
    data/<song>/spectrogram.npz (+ .json)    stage 1
    data/<song>/runs/<run>/                  stage 2: encoder/decoder/forecaster .keras,
                                             checkpoint.npz, history.csv; the run's record
                                             is encoder.keras.json
    data/<song>/runs/<run>/embedding.npz     stage 3 (+ .json)
    outputs/<song>/spectrogram.png
    outputs/<song>/<run>/trajectory.png, trajectory.html
    data/<song>/runs/<run>/latent_{mlp,lstm}.keras, forecast_*.npz, divergence_*.npz
    outputs/<song>/<run>/forecast_*.png, .html; outputs/<song>/divergence.png (notebook)

Every array file has a JSON sidecar (``<file>.json``) with the settings and
package versions that made it; the next stage checks it before loading.
Files are written to a temporary name and renamed, so an interrupted or failed
stage never leaves a half-written artifact or destroys the previous one.
"""
import contextlib
import datetime
import hashlib
import json
import os
import platform
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
_PACKAGES = ("numpy", "scipy", "tensorflow-cpu", "tensorflow", "keras", "matplotlib",
             "scikit-learn", "imageio", "imageio-ffmpeg", "plotly")


# ---------------------------------------------------------------- writing

@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path`; rename it over `path` on success.

    The temporary name keeps the whole file name as its ending (libraries such
    as Keras insist on ``.keras`` / ``.weights.h5``). On error it is removed and
    `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp{os.getpid()}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_npz(path, **arrays):
    """Write arrays to `path` (.npz) atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


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


# ---------------------------------------------------------------- sidecars

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


def write_sidecar(path, kind, settings, **facts):
    """Record what made the artifact at `path`: its kind, settings, facts, versions."""
    save_json(sidecar_path(path), {
        "kind": kind,
        "file": Path(path).name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "versions": versions(),
        **facts,
    })


def read_sidecar(path, kind, missing_hint):
    """Load the sidecar of `path`, checking the artifact exists and is a `kind`.

    missing_hint : str, what to run to make it (used in the error message).
    """
    path = Path(path)
    side = sidecar_path(path)
    if not path.exists() or not side.exists():
        raise UserError(f"{path} does not exist yet: {missing_hint}")
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{side} is unreadable ({e}); remake it: {missing_hint}") from None
    if meta.get("kind") != kind:
        raise UserError(f"{path} holds a {meta.get('kind')!r}, expected a {kind!r}; remake it: {missing_hint}")
    return meta


def file_hash(path, chunk=1 << 20):
    """SHA-256 of a file's bytes (hex), to tie artifacts to their source."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


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
    name = given.stem if is_path else text
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise UserError(f"song {song!r} is not a usable name; give a name such as 'mysong' or the path of an "
                        "audio or video file, such as 'path/to/mysong.wav'")
    return name


def architecture_tag(alpha):
    """'R' for the plain autoencoder (alpha = 0), 'R-F' for the conditioned one."""
    return "R" if float(alpha) == 0 else "R-F"


def run_name(window_seconds, alpha, beta, gamma, delta, latent_dim, history, seed):
    """A folder name that spells out every setting that shapes a trained model."""
    return (f"w{float(window_seconds):g}s_{architecture_tag(alpha)}"
            f"_a{float(alpha):g}_b{float(beta):g}_g{float(gamma):g}_d{float(delta):g}"
            f"_z{int(latent_dim)}_l{int(history)}_s{int(seed)}")


class Paths:
    """Every artifact path for one song (and, given run settings, one run)."""

    def __init__(self, song, data_dir="data", output_dir="outputs", run=None):
        self.song = song_name(song)
        self.data = Path(data_dir)
        self.outputs = Path(output_dir)
        self.song_dir = self.data / self.song
        self.spectrogram = self.song_dir / "spectrogram.npz"
        self.spectrogram_png = self.outputs / self.song / "spectrogram.png"
        self.run = run
        if run is not None:
            self.run_dir = self.song_dir / "runs" / run
            self.encoder = self.run_dir / "encoder.keras"
            self.decoder = self.run_dir / "decoder.keras"
            self.forecaster = self.run_dir / "forecaster.keras"
            self.checkpoint_state = self.run_dir / "checkpoint.npz"
            self.history = self.run_dir / "history.csv"
            self.embedding = self.run_dir / "embedding.npz"
            self.output_dir = self.outputs / self.song / run
            self.trajectory_png = self.output_dir / "trajectory.png"
            self.trajectory_html = self.output_dir / "trajectory.html"
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


RUN_SETTINGS = ("WINDOW_SECONDS", "ALPHA", "BETA", "GAMMA", "DELTA", "LATENT_DIM", "HISTORY", "SEED")


def run_paths(settings):
    """Paths of the run that `settings` (a script's configured constants) describe."""
    name = run_name(*(settings[k] for k in RUN_SETTINGS))
    return Paths(settings["SONG"], settings["DATA_DIR"], settings["OUTPUT_DIR"], run=name)
