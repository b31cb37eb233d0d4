"""The experiment's grid: songs x variants x seeds x windows x latent sizes, as a list of trials.

A trial is a plain dict (it travels to Ray workers and is saved with its
result)::

    {"song": "synth-0" or a path, "variant": "R-F", "seed": 1, "window": 0.5 (s), "latent": 3,
     "settings": {"ALPHA": 0.001, ..., "LEARNING_RATE": ..., "EPOCHS": 0} or None (PCA),
     "data_dir": absolute, "output_dir": absolute, "synth_seconds": 40.0 (s), "synth_rate": 44100 (Hz),
     "trust_points": 1000, "threads": 1, "log_dir": absolute}

Its "settings" are the variant's training settings in full, in the user's
spelling (TRAIN_KEYS): the variant's own, the rest from the experiment's
config (the run settings) and the training stage's (how training runs).
"""
import itertools
import re
import typing
from pathlib import Path

from dae import config, layout
from dae.errors import UserError

PCA = "PCA"
#: the run settings a variant may set: those that name a run folder (`config.MODEL_SETTINGS`), less the
#: window, latent size and seed, which are grid dimensions
NAMING_KEYS = tuple(k.upper() for k in config.MODEL_SETTINGS if k not in ("window_seconds", "latent_dim", "seed"))
#: every training setting a variant may set: the naming ones and how training runs
TRAIN_KEYS = NAMING_KEYS + ("LEARNING_RATE", "CHUNK_SAMPLES", "CHUNKS_PER_BATCH", "ORDER", "EPOCHS")
SYNTH = re.compile(r"^synth-(\d+)$")


def split(text):
    """'a, b,,c' -> ['a', 'b', 'c']."""
    return [s.strip() for s in str(text).split(",") if s.strip()]


def parse_numbers(text, name, kind):
    """A comma-separated list of distinct numbers (`kind` int or float); a one-line UserError naming `name`."""
    values = []
    for s in split(text):
        try:
            v = kind(s) if kind is int else float(s)
        except ValueError:
            raise UserError(f"{name}: {s!r} is not a {'whole number' if kind is int else 'number'}; "
                            f"give a comma-separated list such as {'1,2,3' if kind is int else '0.5,2'}") from None
        values.append(v)
    if not values:
        raise UserError(f"{name} is empty; give a comma-separated list")
    if len(set(values)) != len(values):
        raise UserError(f"{name} lists a value twice: {text}")
    return values


def _value(text, key, variant):
    """An inline variant's value as its training setting's type says: text for a text setting
    (ORDER), else a number (a whole number for a whole-number setting, when it is one)."""
    kind = typing.get_type_hints(config.Training).get(key.lower())
    if kind is str:
        return text
    try:
        v = float(text)
    except ValueError:
        raise UserError(f"variant {variant!r}: {key}={text!r} is not a number") from None
    return int(v) if kind is int and v == int(v) else v


def parse_variants(text, definitions):
    """The variants to run: {name: settings dict (TRAIN_KEYS -> value), or None for PCA}.

    `text` is comma-separated: names defined in `definitions` (or PCA), or
    inline definitions NAME:SETTING=VALUE+SETTING=VALUE (e.g. ``Rg:alpha=0+gamma=0.01``).
    """
    chosen = {}
    for item in split(text):
        name, _, inline = item.partition(":")
        name = name.strip()
        if not name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
            raise UserError(f"variant name {name!r} must be letters, digits, '-', '_', '.' or '+'")
        if name in chosen:
            raise UserError(f"variant {name!r} is listed twice in VARIANTS")
        if inline:
            if name == PCA:
                raise UserError("PCA trains nothing and takes no settings")
            found = {}
            for part in inline.split("+"):
                key, eq, value = part.partition("=")
                if not eq:
                    raise UserError(f"variant {name!r}: {part!r} should be SETTING=VALUE")
                found[key.strip().upper().replace("-", "_")] = value.strip()
            settings = {k: (_value(v, k, name) if k in TRAIN_KEYS else v) for k, v in found.items()}
        elif name == PCA:
            chosen[name] = None
            continue
        elif name in definitions:
            settings = dict(definitions[name])
        else:
            raise UserError(f"unknown variant {name!r}: choose from {', '.join([*definitions, PCA])} "
                            "or define one inline as NAME:SETTING=VALUE+SETTING=VALUE")
        unknown = sorted(set(settings) - set(TRAIN_KEYS))
        if unknown:
            raise UserError(f"variant {name!r} sets unknown setting {unknown[0]!r}; "
                            f"a variant may set {', '.join(TRAIN_KEYS)}")
        chosen[name] = settings
    if not chosen:
        raise UserError("VARIANTS is empty; give a comma-separated list such as R,R-F,PCA")
    return chosen


def find_songs(text):
    """Songs of the grid: a comma-separated list of songs or audio paths, or one folder (its audio files)."""
    items = split(text)
    if not items:
        raise UserError("SONGS is empty; give songs, audio paths or a folder")
    songs = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in layout.AUDIO_SUFFIXES
                           and not p.name.startswith("."))      # hidden: a temporary, not a song
            if not found:
                raise UserError(f"folder {path} has no audio files ({', '.join(layout.AUDIO_SUFFIXES)}); "
                                "put songs there or list them with --songs")
            songs += [str(p) for p in found]
        else:
            songs.append(item)
    names = [layout.song_name(s) for s in songs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"two songs would be filed under the same name {twice[0]!r}; rename one of them")
    return songs


def variant_settings(cfg: config.Experiment, variants, training: config.Training):
    """{variant: its full training settings (TRAIN_KEYS -> value), or None for PCA}.

    The run settings a variant leaves out are the experiment's (cfg.alpha, ...; the training stage's
    for one the experiment does not list), how training
    runs is the training stage's (training.learning_rate, ...), epochs are cfg.epochs.
    Two variants that would share a run folder but train differently are refused.
    """
    base = {k: getattr(cfg, k.lower(), getattr(training, k.lower())) for k in NAMING_KEYS}   # cfg's, if it has it
    base.update({k: getattr(training, k.lower()) for k in TRAIN_KEYS if k not in NAMING_KEYS}, EPOCHS=cfg.epochs)
    full = {v: (None if s is None else base | s) for v, s in variants.items()}
    folders = {}
    for v, s in full.items():
        if s is None:
            continue
        name = tuple(s[k] for k in NAMING_KEYS)
        if name in folders and full[folders[name]] != s:
            raise UserError(f"variants {folders[name]!r} and {v!r} differ only in settings that do not name a run "
                            f"folder, so they would overwrite each other; make them differ in one of "
                            f"{', '.join(NAMING_KEYS)}")
        folders[name] = v
    return full


def build_grid(cfg: config.Experiment, definitions, training: config.Training = None):
    """Every trial of the experiment `cfg`.

    definitions : {variant name: {SETTING: value}} (experiment.py's VARIANT_SETTINGS).
    training : the training stage's settings (`config.Training`), whose learning rate, chunks and
        order a variant does not set; default `config.Training()`.
    Returns (trials: list of trial dicts in grid order, variant names, songs).
    """
    training = config.Training() if training is None else training
    songs = find_songs(cfg.songs)
    variants = parse_variants(cfg.variants, definitions)
    seeds = parse_numbers(cfg.seeds, "SEEDS", int)
    windows = parse_numbers(cfg.windows, "WINDOWS", float)
    latents = parse_numbers(cfg.latent_dims, "LATENT_DIMS", int)
    if any(w <= 0 for w in windows) or any(d < 1 for d in latents):
        raise UserError("WINDOWS must be positive and LATENT_DIMS at least 1")
    full = variant_settings(cfg, variants, training)
    data, out = str(Path(cfg.data_dir).resolve()), str(Path(cfg.output_dir).resolve())
    log_dir = str((Path(cfg.output_dir) / "experiments" / cfg.name / "logs").resolve())
    trials = []
    for song, variant, seed, window, latent in itertools.product(songs, variants, seeds, windows, latents):
        trials.append({"song": song, "variant": variant, "seed": seed, "window": window, "latent": latent,
                       "settings": full[variant], "data_dir": data, "output_dir": out,
                       "synth_seconds": cfg.synth_seconds, "synth_rate": cfg.synth_rate,
                       "trust_points": cfg.trust_points, "threads": cfg.threads_per_trial, "log_dir": log_dir})
    return trials, list(variants), songs


def trial_key(t):
    """A trial's name (its file's): song__variant__w<window>_z<latent>_s<seed>_e<epochs or ->."""
    s = t["settings"] or {}
    epochs = s.get("EPOCHS", "-") if s else "-"
    return (f"{layout.song_name(t['song'])}__{t['variant']}__w{t['window']:g}_z{t['latent']}"
            f"_s{t['seed']}_e{epochs}")


def pair_key(t):
    """What two trials compared as a pair share: (song name, seed, window, latent size)."""
    return (layout.song_name(t["song"]), t["seed"], t["window"], t["latent"])
