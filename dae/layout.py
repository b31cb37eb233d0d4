"""Where every artifact goes and what it is called.

One folder per song, one per training run, so that R and R-F, 0.5 s and 2 s,
3-D and 12-D results sit side by side and never overwrite each other::

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
    outputs/<song>/index.html                every run of the song, linked (dae.index_page)

Here: the names (a song's from its file, a run's from every setting that shapes
it, a video's frames from their size and step), `Paths` of one song and run,
the paths of the run or song a config names (`run_paths`, `song_paths`), where a sidecar
record sits beside its artifact (`sidecar_path`), where the committed model is
(`model_folder`), and which files of a folder are a video's frames, in order
(`folder_images`). It imports no other module of the package but `dae.errors`:
writing (`dae.store`) and provenance (`dae.provenance`) build on it.
"""
import re
from pathlib import Path

from dae.errors import UserError, refused

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

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".gif")


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
             horizon_decay=1.0, length_weight=1.0, frames=None, **more):
    """A folder name that spells out every setting that shapes a trained model.

    The forecasting horizon and its two knobs appear only when the horizon is
    not 1, so one-step runs keep the names they always had. A video run
    (`frames`, e.g. '150x268_s1': frame size and step) starts with
    'v150x268s1' where an audio run names its window ('w0.5s'). `more`: any
    other setting that shapes a model (a new loss weight, say), appended as
    '_<name><value>' (`run_paths` gives those that differ from their default).
    """
    window = f"v{frames.replace('_', '')}" if frames else f"w{float(window_seconds):g}s"
    name = (f"{window}_{architecture_tag(alpha)}"
            f"_a{float(alpha):g}_b{float(beta):g}_g{float(gamma):g}_d{float(delta):g}"
            f"_z{int(latent_dim)}_l{int(history)}_s{int(seed)}")
    if int(horizon) != 1:
        name += f"_h{int(horizon)}_hd{float(horizon_decay):g}_lw{float(length_weight):g}"
    for key, value in sorted(more.items()):
        name += f"_{key}{value:g}" if isinstance(value, float) else f"_{key}{value}"
    return name


def parse_size(text):
    """'150x268' (HEIGHTxWIDTH pixels, as the original's 150 x 268) -> (150, 268)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not m:
        raise refused("frame_size", f"={text!r} is not HEIGHTxWIDTH in pixels, e.g. 150x268")
    h, w = int(m.group(1)), int(m.group(2))
    if not (8 <= h <= 4320 and 8 <= w <= 7680):
        raise refused("frame_size", f"={text!r}: height and width must be 8..4320 and 8..7680 pixels")
    return h, w


def frames_tag(size, step):
    """The part of file and run names that says how frames were read: '150x268_s1'."""
    h, w = parse_size(size)
    return f"{h}x{w}_s{int(step)}"


# ---------------------------------------------------------------- paths

MODEL_LINK = "model"


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


def sidecar_path(path):
    """Where the record (JSON sidecar) of the artifact at `path` is: ``<file>.json`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".json")


# ---------------------------------------------------------------- a folder of frames

def is_image(path):
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _natural_key(name):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def folder_images(folder):
    """The frame images of a folder, in the order of the numbers in their names."""
    files = [p for p in Path(folder).iterdir() if p.is_file() and is_image(p) and not p.name.startswith(".")]
    if not files:
        raise UserError(f"{folder} holds no frame images ({', '.join(IMAGE_SUFFIXES[:4])}, ...); "
                        "give a folder of numbered frames or a video file")
    return sorted(files, key=lambda p: _natural_key(p.name))


# ---------------------------------------------------------------- run identity

def run_paths(cfg):
    """Paths of the run that `cfg` (a `dae.config.Run`, or any stage's settings that include it) describes."""
    import inspect
    from dae import config, sources
    frames = sources.get(cfg.source).run_tag(cfg)
    named = inspect.signature(run_name).parameters            # the settings every run name spells out
    fields = config.Run.__dataclass_fields__
    more = {name: getattr(cfg, name) for name in config.MODEL_SETTINGS
            if name not in named and getattr(cfg, name) != fields[name].default}
    name = run_name(cfg.window_seconds, cfg.alpha, cfg.beta, cfg.gamma, cfg.delta, cfg.latent_dim, cfg.history,
                    cfg.seed, cfg.horizon, cfg.horizon_decay, cfg.length_weight, frames=frames, **more)
    return Paths(cfg.song, cfg.data_dir, cfg.output_dir, run=name, frames=frames)


def song_paths(cfg):
    """Paths of the song (no run) that `cfg` (a `dae.config.Song`) names, with its source's frames tag."""
    from dae import sources
    return Paths(cfg.song, cfg.data_dir, cfg.output_dir, frames=sources.get(cfg.source).run_tag(cfg))
