"""Every setting of every stage, stated once: its type, bounds, unit, help and default.

A stage's settings are one frozen dataclass (`Spectrogram`, `Training`,
`Embedding`, ...). Each field is declared with `setting(default, help, ...)`;
its annotation is its type. The field's name is the library's name for it
(``alpha``); the user's name is the same in capitals (``ALPHA``, the constant
at the top of a script) and the flag ``--alpha``. An instance is checked when
it is made: a value of the wrong type or outside its bounds raises a
`SettingError` that names the field, the value and the allowed range, and a
whole number given as a float (``3.0``) or a whole number for a float field
is converted. Being frozen, a config cannot change after it is checked, and
nothing is carried from one call to the next: build a new one with
`dataclasses.replace`.

    cfg = Training(song="mysong", alpha=0.0)       # library code and tests
    cfg = Training.from_constants(settings, globals())  # a script's constants (dae.cli adds the command line)
    cfg.settings()                                 # {"SONG": "mysong", "ALPHA": 0.0, ...}: what sidecars record

The defaults here are the original method's. The constants in settings.py and
at the top of each script are the user's values: they win over these.
"""
import dataclasses
import math
import typing
from dataclasses import dataclass, field

from dae import sources
from dae.clock import parse_clock
from dae.errors import SettingError

WHOLE_RANGE = (-(2 ** 31), 2 ** 31 - 1)   # any whole number without bounds of its own: no int32 overflow


def setting(default, help, *, unit="", least=None, most=None, above=False, choices=None, selects=""):
    """A field of a settings dataclass.

    default : the value when nobody says otherwise.
    help : one line for --help (the unit is added).
    least, most : inclusive bounds (None: unbounded; a whole number is still kept inside WHOLE_RANGE).
    above : the least is excluded (a learning rate of 0 learns nothing).
    choices : the allowed values of a text setting.
    selects : for a stage that only reads a run: what this setting selects (its --help says so).
    """
    return field(default=default, metadata=dict(help=help, unit=unit, least=least, most=most, above=above,
                                                choices=tuple(choices) if choices else None, selects=selects))


def same_as(kind, name):
    """A field declared as `kind`'s field `name` is (a stage that reads one setting of another's)."""
    f = kind.__dataclass_fields__[name]
    return field(default=f.default, metadata=f.metadata)


def shown(number):
    """A number as it would be typed: a whole float without its '.0' (``-1.0`` -> ``-1``), else its repr."""
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    return repr(number) if isinstance(number, float) else str(number)


@dataclass(frozen=True)
class Settings:
    """The base of every stage's settings: checked when made, frozen after."""

    #: True for a stage that reads an existing run: its run settings only select the run folder
    READS_RUN: typing.ClassVar[bool] = False

    def __post_init__(self):
        problems = []
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), hints[f.name]
            value, problem = _checked(value, kind, f.metadata)
            if problem:
                problems.append((f.name, problem))
            else:
                object.__setattr__(self, f.name, value)
        if problems:
            raise SettingError(problems)

    @classmethod
    def names(cls):
        """The field names, in order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def describe(cls):
        """[(field, type, default, metadata)] of every setting, in order: what --help lists."""
        hints = typing.get_type_hints(cls)
        return [(f.name, hints[f.name], f.default, f.metadata) for f in dataclasses.fields(cls)]

    @classmethod
    def from_constants(cls, *namespaces, **overrides):
        """The settings from UPPER_CASE constants (module objects or dicts: settings.py, a script's
        globals), later ones winning, then `overrides` (field names). Names that are not settings of
        this stage are ignored; nothing is changed in the namespaces."""
        fields = set(cls.names())
        values = {}
        for space in namespaces:
            space = space if isinstance(space, dict) else vars(space)
            values.update({k.lower(): v for k, v in space.items() if k.isupper() and k.lower() in fields})
        return cls(**(values | overrides))

    def settings(self):
        """{USER_NAME: value} of every setting: what a sidecar records as the stage's settings."""
        return {f.name.upper(): getattr(self, f.name) for f in dataclasses.fields(self)}

    def pick(self, kind, **overrides):
        """The settings of stage `kind` that this config shares with it (same names), the rest `kind`'s
        defaults, then `overrides`: e.g. a pipeline's shared settings handed to one stage."""
        mine = {name: getattr(self, name) for name in kind.names() if name in self.names()}
        return kind(**(mine | overrides))


def check(kind, least=None, **values):
    """Check `values` (field names of settings class `kind`, given to a library function one by one)
    against `kind`'s types and bounds; `least` (name -> bound) raises a field's least for this use.
    Raises a `SettingError` naming every bad one; returns the values converted (an int for a float field)."""
    hints = typing.get_type_hints(kind)
    fields = kind.__dataclass_fields__
    out, problems = {}, []
    for name, value in values.items():
        meta = dict(fields[name].metadata)
        if least and name in least:
            meta["least"] = least[name]
        value = value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value
        out[name], problem = _checked(value, hints[name], meta)
        if problem:
            problems.append((name, problem))
    if problems:
        raise SettingError(problems)
    return out


def bounds(kind, meta):
    """(least, most) of a field of type `kind`: its own bounds, a whole number's kept inside WHOLE_RANGE."""
    least, most = meta.get("least"), meta.get("most")
    if kind is int:
        least = WHOLE_RANGE[0] if least is None else least
        most = WHOLE_RANGE[1] if most is None else most
    return least, most


def _checked(value, kind, meta):
    """(value converted to `kind`, None) or (value, the problem as text after 'name')."""
    if kind is bool:
        if not isinstance(value, bool):
            return value, f"={value!r} is not true or false"
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value, f"={value!r} is not a whole number"
        if isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                return value, f"={shown(value)} is not a whole number"
            value = int(value)
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value, f"={value!r} is not a number"
        try:
            value = float(value)
        except OverflowError:
            return value, f"={value} is not a finite number"
        if not math.isfinite(value):
            return value, f"={value} is not a finite number"
    elif kind is str:
        if not isinstance(value, str):
            return value, f"={value!r} is not text"
        if meta.get("choices") and value not in meta["choices"]:
            return value, f"={value!r} is not one of {', '.join(meta['choices'])}"
        return value, None
    if kind in (int, float):
        least, most = bounds(kind, meta)
        if meta.get("above") and least is not None and value <= least:
            return value, f"={shown(value)} must be more than {shown(least)}"
        if least is not None and value < least:
            return value, f"={shown(value)} must be at least {shown(least)}"
        if most is not None and value > most:
            return value, f"={shown(value)} must be at most {shown(most)}"
    return value, None


# ---------------------------------------------------------------- the song and the run

SOURCES = tuple(sources.REGISTRY)


@dataclass(frozen=True)
class Song(Settings):
    """Which song (or video) and where its artifacts go."""
    song: str = setting("demo", "data/<SONG>.wav (or any audio or video file ffmpeg decodes), or a path to one; "
                                "\"demo\" is synthesised", selects="the song (a name, or the audio file it was saved from)")
    source: str = setting("audio", "\"audio\": embed the sound (spectrogram windows); \"video\": embed the pictures "
                                   "(a video file or a folder of numbered frames)", choices=SOURCES,
                          selects="what it embeds: audio (the sound) or video (the pictures)")
    frame_size: str = setting("150x268", "video: frames are read as grayscale and resized to HEIGHTxWIDTH pixels "
                                         "(the original's 150 x 268)",
                              selects="the frame size a video run's frames were read at (HEIGHTxWIDTH)")
    frame_step: int = setting(1, "video: keep every FRAME_STEP-th frame (1 = all)", least=1, most=10_000,
                              selects="the frame step a video run's frames were read with")
    data_dir: str = setting("data", "arrays, models, embeddings", selects="the folder of arrays and models")
    output_dir: str = setting("outputs", "pictures, HTML, video", selects="the folder of pictures and videos")


@dataclass(frozen=True)
class Run(Song):
    """The settings that shape a trained model, and so name its run folder."""
    window_seconds: float = setting(0.5, "seconds of audio summarised by one point (0.5 or 2 in the original)",
                                    unit="s", least=0.01, most=600.0, selects="the window it was trained with (s)")
    latent_dim: int = setting(3, "dimensions of the embedding space", least=1, most=1024,
                              selects="the latent size it was trained with")
    alpha: float = setting(0.001, "forecasting-loss weight: 0 = plain autoencoder \"R\", > 0 = conditioned \"R-F\"",
                           least=0.0, selects="the forecasting-loss weight it was trained with (0 = R, > 0 = R-F)")
    beta: float = setting(1.0, "reconstruction-loss (binary cross-entropy) weight", least=0.0,
                          selects="the reconstruction-loss weight it was trained with")
    gamma: float = setting(0.0, "off-centre loss (mean z^2) weight", least=0.0,
                           selects="the off-centre-loss weight it was trained with")
    delta: float = setting(0.0, "curvature loss weight", least=0.0, selects="the curvature-loss weight it was trained with")
    history: int = setting(45, "l: embeddings of previous windows the forecaster reads", unit="windows",
                           least=3, most=100_000, selects="the forecaster history it was trained with")
    horizon: int = setting(1, "H: steps the forecaster rolls forward on its own predictions in training; "
                              "1 = the original's one-step loss", unit="steps", least=1, most=10_000,
                           selects="the forecasting horizon it was trained with (1 = one step)")
    horizon_decay: float = setting(1.0, "weight of step k of the horizon is HORIZON_DECAY^(k-1) (1 = all steps "
                                        "alike); H > 1 only", least=1e-9, most=1.0,
                                   selects="the weight decay over the horizon's steps it was trained with")
    length_weight: float = setting(1.0, "weight of ln^2(|predicted| / |true| k-step displacement) next to 1 - cos; "
                                        "H > 1 only", least=0.0,
                                   selects="the displacement-length weight it was trained with (horizon > 1)")
    seed: int = setting(1337, "makes runs repeatable", least=0, most=2 ** 32 - 1,
                        selects="the seed it was trained with")


#: each term of the training loss (`dae.model.ConditionedAutoencoder.TERMS`, in order) and the setting of
#: `Run` that weighs it: a new term is its computation in dae/model.py, a weight above and a line here
LOSS_WEIGHTS = {"reconstruction": "beta", "forecasting": "alpha", "off_centre": "gamma", "curvature": "delta"}

#: the settings of `Run` that shape a model beyond the song (they name its run folder, `dae.layout.run_paths`)
MODEL_SETTINGS = tuple(name for name in Run.__dataclass_fields__ if name not in Song.__dataclass_fields__)


# ---------------------------------------------------------------- the stages

@dataclass(frozen=True)
class Spectrogram(Song):
    """Stage 1 (save_dataset.py)."""
    window_seconds: float = same_as(Run, "window_seconds")
    plot: bool = setting(True, "also save outputs/<song>/spectrogram.png (a video: a sheet of frames, "
                               "frames_<size>_s<step>.png)")
    folder_fps: float = setting(30.0, "video: frames per second of a folder of frame images (a video file has its "
                                      "own rate)", unit="frames/s", least=0.001, most=1000.0)


ORDERS = ("original", "tiled")


@dataclass(frozen=True)
class Training(Run):
    """Stage 2 (train_model.py)."""
    epochs: int = setting(0, "0 = as the original: 6 for a 0.5 s window, 7 for 2 s, 12 for a video",
                          least=0, most=100_000)
    learning_rate: float = setting(1e-3, "Adam", least=0.0, most=10.0, above=True)
    chunk_samples: int = setting(1, "consecutive samples per chunk; each chunk encodes CHUNK_SAMPLES + HISTORY "
                                    "windows once", least=1, most=1_000_000)
    chunks_per_batch: int = setting(8, "chunks per gradient step (batch = CHUNK_SAMPLES * CHUNKS_PER_BATCH samples)",
                                    least=1, most=1_000_000)
    order: str = setting("original", "\"original\": the original's 70% shuffle buffer over chunks; \"tiled\": "
                                     "random-phase tiling each epoch", choices=ORDERS)
    video_chunk_samples: int = setting(16, "video runs: consecutive samples per chunk (neighbouring frames share "
                                           "their history's encodes)", least=1, most=1_000_000)
    video_chunks_per_batch: int = setting(1, "video runs: chunks per step (memory grows with it: 4 at 150x268 needs "
                                             "about 4.4 GB)", least=1, most=1_000_000)
    video_order: str = setting("tiled", "video runs: the schedule's order (see ORDER)", choices=ORDERS)
    video_spread_frames: int = setting(8, "video runs: frames drawn from across the video each step, reconstructed "
                                          "with the chunk's", least=0, most=1_000_000)
    validation: float = setting(0.2, "video runs: the last fraction of the frames, never trained on, scored each "
                                     "epoch (audio: none, as the original)", least=0.0, most=0.9)
    resume: bool = setting(True, "continue an interrupted run from its last epoch; false starts over")
    verbose: int = setting(1, "Keras progress: 0 silent, 1 progress bar, 2 one line per epoch", least=0, most=2)


@dataclass(frozen=True)
class Sections(Settings):
    """The song's sections, for the pictures (stage 3) and the player page's marks (stage 4)."""
    find_sections: bool = setting(True, "find the song's sections from the music (novelty on the spectrogram's "
                                        "self-similarity; the path's for a video) for trajectory_sections.png, "
                                        "the marks on trajectory.png and the player page's section bar; false: "
                                        "blocks of SECTION_SECONDS")
    section_seconds: float = setting(30.0, "with FIND_SECTIONS false, sections of this many seconds each; "
                                           "0 = no sections", unit="s", least=0.0)
    sections: str = setting("", "or the sections' start times (s), e.g. \"16,32\": 0-16, 16-32, 32-end; overrides "
                                "FIND_SECTIONS and SECTION_SECONDS")


@dataclass(frozen=True)
class Embedding(Run, Sections):
    """Stage 3 (embed_audio.py)."""
    READS_RUN = True
    plot: bool = setting(True, "also save outputs/<song>/<run>/trajectory.png and trajectory.html")


@dataclass(frozen=True)
class LatentTraining(Run):
    """Stage 5 (train_latent_mlp.py, train_latent_lstm.py)."""
    READS_RUN = True
    epochs: int = setting(8, "as the original (8 for the MLP, 10 for the LSTM)", least=0, most=100_000)
    batch_size: int = setting(4, "as the original", least=1, most=1_000_000)
    holdout: str = setting("blocks", "the 20% the model is tested on, never trained on: \"blocks\", five blocks "
                                     "spread across the song; \"end\": its last 20% (a coda is often unlike the rest)",
                           choices=("blocks", "end"))


@dataclass(frozen=True)
class Forecast(Run):
    """Stage 6 (forecast_mlp.py, forecast_lstm.py)."""
    READS_RUN = True
    n_steps: int = setting(200, "steps to forecast", unit="steps", least=1, most=1_000_000)
    initial_condition: int = setting(-1, "index of the starting point on the path; -1 = a fixed choice drawn with "
                                         "SEED", least=-1)
    at: str = setting("", "or the song time to start from, m:ss or seconds (e.g. 2:02 or 122): the window centred "
                          "nearest it; overrides INITIAL_CONDITION", unit="m:ss")

    def __post_init__(self):
        super().__post_init__()
        if self.at.strip():
            parse_clock(self.at)        # a time that cannot be read is refused at the door


@dataclass(frozen=True)
class KnnRule(Settings):
    """How the KNN displacement field is estimated (stages 6 and 7)."""
    k: int = setting(5, "neighbours averaged", least=1, most=10_000)
    exclusion_radius: int = setting(-1, "library points within this many steps of the initial condition are never "
                                        "used; -1 = the window's width", unit="steps", least=-1)
    original_rule: bool = setting(False, "the original's rule instead: no exclusion, drop the nearest neighbour at "
                                         "every query")


@dataclass(frozen=True)
class KnnForecast(Forecast, KnnRule):
    """Stage 6 (forecast_knn.py)."""
    READS_RUN = True


@dataclass(frozen=True)
class Divergence(Run, KnnRule):
    """Stage 7 (divergence.py)."""
    READS_RUN = True
    n_steps: int = setting(30, "forecast steps from each initial condition (a growth rate needs two)",
                           unit="steps", least=2, most=10_000)
    every: int = setting(10, "an initial condition at every EVERY-th valid index", least=1)
    fit_steps: int = setting(10, "the growth rate is fitted to mean ln δ over steps 1..FIT_STEPS", least=2)

    def rule(self):
        """The KNN and divergence settings alone (what a saved divergence records, name -> value)."""
        return {name.upper(): getattr(self, name)
                for name in ("k", "exclusion_radius", "original_rule", "n_steps", "every", "fit_steps")}


FORMATS = ("mp4", "html", "both")


@dataclass(frozen=True)
class Player(Run, Sections):
    """Stage 4 (play_embedding.py)."""
    READS_RUN = True
    fps: int = setting(30, "frames per second (positions are interpolated between the 43 points/s)",
                       unit="frames/s", least=1, most=240)
    width: int = setting(1280, "pixels", unit="px", least=64, most=7680)
    height: int = setting(720, "pixels", unit="px", least=64, most=4320)
    tail_seconds: float = setting(1.0, "seconds of path highlighted behind the current point (video and player "
                                       "page)", unit="s", least=0.0, most=600.0)
    degrees_per_second: float = setting(6.0, "camera rotation speed", unit="deg/s")
    spectrogram: bool = setting(True, "show the spectrogram with a cursor under the 3-D view")
    workers: int = setting(0, "processes drawing frames; 0 = one per CPU core", least=0, most=1024)
    progress: bool = setting(True, "show a progress bar")
    format: str = setting("both", "\"mp4\" (the video), \"html\" (the player page, no rendering) or \"both\"",
                          choices=FORMATS)
    audio_kbps: int = setting(128, "the player page's audio: AAC in player.m4a at this bitrate",
                              unit="kbit/s", least=16, most=512)


@dataclass(frozen=True)
class Pipeline(Run):
    """Every stage on one song (pipeline.py)."""
    epochs: int = same_as(Training, "epochs")
    format: str = same_as(Player, "format")
    compare_r: bool = setting(True, "also run the plain autoencoder R (ALPHA = 0) beside R-F, for the notebook "
                                    "to compare")
    notebook: bool = setting(True, "end with divergence_plots.ipynb for the song: outputs/<song>/divergence.png "
                                   "and the R vs R-F figure")
    r_format: str = setting("html", "play_embedding.py's FORMAT for R, the run beside R-F: \"html\" (its player "
                                    "page; no second video to render), \"mp4\" or \"both\"", choices=FORMATS)
    side_by_side: bool = setting(True, "run R-F's stages and R's at the same time, each in a process of its own "
                                       "with one core (on a machine of two cores or more)")


@dataclass(frozen=True)
class Notebook(Settings):
    """A notebook run headless for one song (python -m dae.notebook): the settings it is given."""
    song: str = same_as(Song, "song")
    data_dir: str = same_as(Song, "data_dir")
    output_dir: str = same_as(Song, "output_dir")


@dataclass(frozen=True)
class Corpus(Settings):
    """The real corpus (corpus.py): which packaged soundtracks, and how their tracks become clips."""
    packages: str = setting("singularity-music,hyperrogue-music,drascula-music,warzone2100-music,asc-music",
                            "comma-separated Debian packages of game music, installed by `make corpus`")
    songs: int = setting(24, "clips in the corpus, taken round robin over the packages", least=1, most=100_000)
    offset_seconds: float = setting(30.0, "each clip starts this far into its track (past the intro)", unit="s",
                                    least=0.0)
    clip_seconds: float = setting(30.0, "length of each clip, as the original's clips", unit="s", least=1.0,
                                  most=3600.0)
    clips_per_track: int = setting(1, "non-overlapping clips cut from one long track at most", least=1,
                                   most=1000)
    out_dir: str = setting("data/corpus", "the manifest and clips/ (the experiment's --songs) go here")


@dataclass(frozen=True)
class Experiment(Settings):
    """Every song x variant x seed (x window x latent size) through the pipeline (experiment.py)."""
    songs: str = setting("synth-0,synth-1,synth-2", "comma-separated songs or audio paths, or a folder (every audio "
                                                    "file in it); synth-<n> is synthesised from seed n")
    variants: str = setting("R,R-F,R-FH,PCA", "comma-separated names from VARIANT_SETTINGS, PCA (trains nothing), "
                                              "or NAME:SETTING=VALUE+SETTING=VALUE")
    seeds: str = setting("1,2,3", "comma-separated training seeds")
    windows: str = setting("0.5", "comma-separated window lengths in seconds")
    latent_dims: str = setting("3", "comma-separated latent sizes")
    epochs: int = same_as(Training, "epochs")
    name: str = setting("synth3", "the experiment's folder: OUTPUT_DIR/experiments/NAME")
    address: str = setting("", "an existing Ray cluster (host:port, ray://host:10001 or auto); empty = a local "
                               "instance")
    num_cpus: int = setting(0, "CPUs of the local Ray instance; 0 = every core of this machine", least=0)
    cpus_per_trial: int = setting(1, "Ray CPUs each trial reserves", least=1)
    threads_per_trial: int = setting(1, "TensorFlow threads per trial on Ray; 0 = TensorFlow's default", least=0)
    use_ray: bool = setting(True, "false: one trial at a time in this process, without Ray")
    worker_logs: bool = setting(False, "show the Ray workers' own output (training progress, warnings)")
    synth_seconds: float = setting(40.0, "length of each synthesised synth-<n> song", unit="s", least=0.0, above=True)
    synth_rate: int = setting(44100, "sample rate of synthesised songs", unit="Hz", least=1000, most=384_000)
    publish: bool = setting(False, "also copy the report into docs/experiment_NAME.md and the README's section of it")
    trust_points: int = setting(1000, "trustworthiness is measured on at most this many evenly spaced windows",
                                least=1)
    alpha: float = same_as(Run, "alpha")
    beta: float = same_as(Run, "beta")
    gamma: float = same_as(Run, "gamma")
    delta: float = same_as(Run, "delta")
    history: int = same_as(Run, "history")
    horizon: int = same_as(Run, "horizon")
    horizon_decay: float = same_as(Run, "horizon_decay")
    length_weight: float = same_as(Run, "length_weight")
    data_dir: str = same_as(Song, "data_dir")
    output_dir: str = same_as(Song, "output_dir")
