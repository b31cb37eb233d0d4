"""Experiments: a grid of songs x variants x seeds (x window x latent size),
each trial run through the pipeline's own stages, on Ray or in this process,
with a report of paired statistics.

The stage adapter (`prepare_song`, `train_stage`, `embed_stage`, `pca_stage`,
`divergence_stage`) is the one place that calls the pipeline's public
functions; every artifact lands in the usual run folders and a stage whose
result is already there is reused, never recomputed.
"""
import contextlib
import csv
import io
import itertools
import json
import logging
import math
import os
import re
import socket
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from dae import cli, dataset, embedding, layout, provenance, stats, store, synth
from dae.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
PCA = "PCA"
# The run settings a variant may set are those that name a run folder (layout.RUN_SETTINGS,
# less window, latent size and seed, which are grid dimensions), plus how training runs.
NAMING_KEYS = tuple(k for k in layout.RUN_SETTINGS if k not in ("WINDOW_SECONDS", "LATENT_DIM", "SEED"))
TRAIN_KEYS = NAMING_KEYS + ("LEARNING_RATE", "CHUNK_SAMPLES", "CHUNKS_PER_BATCH", "ORDER", "EPOCHS")
WHOLE_KEYS = ("HISTORY", "HORIZON", "CHUNK_SAMPLES", "CHUNKS_PER_BATCH", "EPOCHS")
SYNTH = re.compile(r"^synth-(\d+)$")
HORIZONS = (1, 5, 10, 29)
RULES = (("x", False), ("o", True))   # x: default exclusion radius; o: the original rule


# ---------------------------------------------------------------- the grid

def split(text):
    return [s.strip() for s in str(text).split(",") if s.strip()]


def parse_numbers(text, name, kind):
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


def _number(text, key, variant):
    try:
        v = float(text)
    except ValueError:
        raise UserError(f"variant {variant!r}: {key}={text!r} is not a number") from None
    return int(v) if key in WHOLE_KEYS and v == int(v) else v


def parse_variants(text, definitions):
    """The variants to run: {name: settings dict, or None for PCA}.

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
            settings = {k: _number(v, k, name) for k, v in found.items() if k in TRAIN_KEYS}
            settings.update({k: v for k, v in found.items() if k not in TRAIN_KEYS})
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
    """Songs of the grid: a comma-separated list of songs or audio paths, or one folder."""
    items = split(text)
    if not items:
        raise UserError("SONGS is empty; give songs, audio paths or a folder")
    songs = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in layout.AUDIO_SUFFIXES)
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


def build_grid(cfg, definitions):
    """Every trial of the experiment `cfg` (the script's settings): list of dicts."""
    import train_model  # the stage script's own defaults (learning rate, chunks)
    songs = find_songs(cfg["SONGS"])
    variants = parse_variants(cfg["VARIANTS"], definitions)
    seeds = parse_numbers(cfg["SEEDS"], "SEEDS", int)
    windows = parse_numbers(cfg["WINDOWS"], "WINDOWS", float)
    latents = parse_numbers(cfg["LATENT_DIMS"], "LATENT_DIMS", int)
    if any(w <= 0 for w in windows) or any(d < 1 for d in latents):
        raise UserError("WINDOWS must be positive and LATENT_DIMS at least 1")
    import settings as shared
    base = {k: cfg.get(k, getattr(shared, k)) for k in NAMING_KEYS}
    base.update(LEARNING_RATE=train_model.LEARNING_RATE, CHUNK_SAMPLES=train_model.CHUNK_SAMPLES,
                CHUNKS_PER_BATCH=train_model.CHUNKS_PER_BATCH, ORDER=train_model.ORDER, EPOCHS=cfg["EPOCHS"])
    full = {v: (None if s is None else base | s) for v, s in variants.items()}
    folders = {}
    for v, s in full.items():
        if s is None:
            continue
        name = tuple(s[k] for k in NAMING_KEYS)
        if name in folders and full[folders[name]] != s:
            raise UserError(f"variants {folders[name]!r} and {v!r} differ only in settings that do not name a run "
                            f"folder, so they would overwrite each other; make them differ in one of {', '.join(NAMING_KEYS)}")
        folders[name] = v
    data, out = str(Path(cfg["DATA_DIR"]).resolve()), str(Path(cfg["OUTPUT_DIR"]).resolve())
    trials = []
    for song, variant, seed, window, latent in itertools.product(songs, variants, seeds, windows, latents):
        trials.append({"song": song, "variant": variant, "seed": seed, "window": window, "latent": latent,
                       "settings": full[variant], "data_dir": data, "output_dir": out,
                       "synth_seconds": cfg["SYNTH_SECONDS"], "synth_rate": cfg["SYNTH_RATE"],
                       "trust_points": cfg["TRUST_POINTS"], "threads": cfg["THREADS_PER_TRIAL"],
                       "log_dir": str((Path(cfg["OUTPUT_DIR"]) / "experiments" / cfg["NAME"] / "logs").resolve())})
    return trials, list(variants), songs


def trial_key(t):
    s = t["settings"] or {}
    epochs = s.get("EPOCHS", "-") if s else "-"
    return (f"{layout.song_name(t['song'])}__{t['variant']}__w{t['window']:g}_z{t['latent']}"
            f"_s{t['seed']}_e{epochs}")


def pair_key(t):
    return (layout.song_name(t["song"]), t["seed"], t["window"], t["latent"])


# ---------------------------------------------------------------- the stage adapter

def limit_threads(n):
    """At most n TensorFlow threads in this process (0: leave TensorFlow's default)."""
    if n and n > 0:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(n)
        os.environ["TF_NUM_INTEROP_THREADS"] = str(max(1, n))
        if "tensorflow" in sys.modules:
            tf = sys.modules["tensorflow"]
            try:
                tf.config.threading.set_intra_op_parallelism_threads(n)
                tf.config.threading.set_inter_op_parallelism_threads(max(1, n))
            except (RuntimeError, AttributeError):  # already running: the environment set it
                pass


def _settings(t, seed=None):
    """A stage-script style settings dict for trial t (what the sidecars record)."""
    return {"SONG": t["song"], "WINDOW_SECONDS": t["window"], "LATENT_DIM": t["latent"],
            "SEED": t["seed"] if seed is None else seed, "DATA_DIR": t["data_dir"], "OUTPUT_DIR": t["output_dir"],
            **(t["settings"] or {})}


def song_paths(song, data_dir, output_dir, run=None):
    return layout.Paths(song, data_dir, output_dir, run=run)


def call_stage(script, **settings):
    """Run a stage script's own main() in this process with these settings on its
    command line (so whatever the script checks and records is done as when a
    user runs it). Its printing goes to this process's stdout; a refused
    setting or a failure is a UserError with the script's one line."""
    import contextlib
    import importlib
    module = importlib.import_module(script)
    argv = cli.flags(settings)
    saved, err = sys.argv, io.StringIO()
    sys.argv = [f"{script}.py", *argv]
    try:
        with contextlib.redirect_stderr(err):
            module.main()
    except SystemExit as e:
        if e.code:
            said = err.getvalue().strip().splitlines()
            raise UserError(f"{script}.py refused its settings: {said[-1] if said else f'exit {e.code}'}") from None
    finally:
        sys.argv = saved


def reusable(paths, kind, path=None, wanted=None):
    """The checked chain of the `kind` artifact (at `path`, or where `paths` puts it) when a
    trial may reuse it, else None.

    Reusable means: `provenance.check` passes (the artifact's bytes, its own
    record and everything it was made from match their sha256), and every
    setting in `wanted` (name -> value) is recorded with the same value. A
    setting the record lacks does not match: an artifact is reused only when
    what made it is known in full.
    """
    try:
        chain = provenance.check(paths, kind, path=path)
    except UserError:
        return None
    recorded = chain[kind]["settings"]
    if any(name not in recorded or recorded[name] != value for name, value in (wanted or {}).items()):
        return None
    return chain


def prepare_song(song, window, data_dir, output_dir, synth_seconds=40.0, synth_rate=44100):
    """Stage 1 for one song (once, before its trials): synthesise a synth-<n>
    song if needed, then save_dataset.py unless the saved spectrogram is of the same audio.

    Returns {"ok": True, "computed": bool} or {"ok": False, "error": one line}.
    """
    try:
        paths = song_paths(song, data_dir, output_dir)
        m = SYNTH.match(str(song))
        target = paths.data / f"{song}.wav"
        if m and not target.exists():
            from dae import audio
            with store.atomic_path(target) as tmp:
                audio.write_wav(tmp, synth.song(int(m.group(1)), synth_seconds, synth_rate), synth_rate, "int16")
        source = dataset.find_audio(song, paths)
        chain = reusable(paths, "spectrogram")
        if chain is not None and chain["spectrogram"]["inputs"].get("audio", {}).get("sha256") \
                == provenance.file_hash(source):
            return {"ok": True, "computed": False}
        call_stage("save_dataset", song=song, window_seconds=window, data_dir=data_dir, output_dir=output_dir,
                   plot=False)
        return {"ok": True, "computed": True}
    except Exception as e:  # noqa: BLE001 - every failure becomes the trial's one-line reason
        return {"ok": False, "error": one_line(e, song)}


def one_line(e, song=None):
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if not isinstance(e, UserError):
        text = f"{type(e).__name__}: {text}" if text else type(e).__name__
        if song is not None and str(song) not in text:
            text = f"{song}: {text}"
    return text


def load_frames(paths):
    """The saved spectrogram of a song scaled to [0, 1]: (frames (n_time, height), T, meta, lo, hi)."""
    from dae.spectrogram import scale_unit
    F, T, S, meta = dataset.load(paths)
    frames, lo, hi = scale_unit(S.T)
    return frames, T, meta, lo, hi


def run_settings(t):
    """The settings that select trial t's run folder, as the stage scripts spell them."""
    s = t["settings"]
    return dict(song=t["song"], window_seconds=t["window"], latent_dim=t["latent"], seed=t["seed"],
                data_dir=t["data_dir"], output_dir=t["output_dir"], **{k.lower(): s[k] for k in NAMING_KEYS})


def run_folder(t):
    """The name of trial t's run folder."""
    if t["settings"] is None:
        return pca_run_name(t["window"], t["latent"], t["seed"])
    return layout.run_paths({k.upper(): v for k, v in run_settings(t).items()}).run


def training_settings(t):
    """The settings trial t's model must have been trained with, as train_model.py records them
    (the song and folders are checked through the chain instead: the same audio may be named two ways)."""
    s = t["settings"]
    return {"WINDOW_SECONDS": t["window"], "LATENT_DIM": t["latent"], "SEED": t["seed"],
            **{k: s[k] for k in TRAIN_KEYS if k != "EPOCHS"}}


def trained_epochs(paths, t):
    """Epochs of the run's committed model when it was trained with trial t's settings on the
    current spectrogram (checked in full); None when there is no such model."""
    chain = reusable(paths, "encoder", wanted=training_settings(t))
    return None if chain is None else int(chain["encoder"].get("epochs", 0))


def train_stage(t, paths):
    """Stage 2: train_model.py with the trial's settings, unless the run's model was trained
    with exactly them for exactly the asked epochs. Returns True when it trained.

    A model with the trial's settings but more epochs than asked is never used
    for the trial (it would be reported as the asked number) nor replaced (it
    may be the user's): the trial fails, saying so.
    """
    s = t["settings"]
    from dae import training
    epochs = s["EPOCHS"] or training.default_epochs(t["window"])
    done = trained_epochs(paths, t)
    if done == epochs:
        return False
    if done is not None and done > epochs:
        raise UserError(f"{paths.run_dir} holds a {done}-epoch model with this trial's settings, and the trial "
                        f"asks for {epochs}; run the experiment with --epochs {done}, or move that run folder "
                        "away to train a new one")
    call_stage("train_model", **run_settings(t), epochs=epochs, learning_rate=s["LEARNING_RATE"],
               chunk_samples=s["CHUNK_SAMPLES"], chunks_per_batch=s["CHUNKS_PER_BATCH"], order=s["ORDER"],
               resume=True, verbose=0)
    done = trained_epochs(paths, t)
    if done != epochs:
        raise UserError(f"after training, {paths.run_dir} holds no {epochs}-epoch model with this trial's "
                        f"settings ({'none' if done is None else f'{done} epochs'}); move that run folder away "
                        "and run the experiment again")
    return True


def embed_stage(t, paths):
    """Stage 3: embed_audio.py (without pictures) unless the embedding was made by
    the run's current encoder (checked in full). Returns True when it embedded."""
    chain = reusable(paths, "embedding")
    if chain is not None and "encoder" in chain:
        return False
    call_stage("embed_audio", **run_settings(t), plot=False)
    return True


def pca_run_name(window, latent, seed):
    return f"w{float(window):g}s_PCA_z{int(latent)}_s{int(seed)}"


def flat_windows(frames, width):
    from dae.spectrogram import sliding_windows
    W = sliding_windows(frames, width)
    return np.ascontiguousarray(W).reshape(len(W), -1)


def pca_settings(t):
    """The settings a PCA run's records carry (what the components depend on besides the spectrogram)."""
    return _settings(t, seed=0) | {"PCA_SEED": t["seed"]}


def pca_stage(t, paths):
    """The PCA baseline: the first d principal components of the song's flattened
    windows, saved as the run's embedding (and pca.npz) in its run folder; reused when
    both were made with the trial's settings from the current spectrogram."""
    from dae.spectrogram import window_times, window_width
    wanted = {k: v for k, v in pca_settings(t).items() if k not in ("SONG", "DATA_DIR", "OUTPUT_DIR")}
    emb = reusable(paths, "embedding", wanted=wanted)
    pca_chain = reusable(paths, "pca", path=paths.run_dir / "pca.npz", wanted=wanted)
    if emb is not None and pca_chain is not None and emb["embedding"].get("architecture") == PCA \
            and emb["spectrogram"]["sha256"] == pca_chain["spectrogram"]["sha256"]:
        return False
    from sklearn.decomposition import PCA as SkPCA
    frames, T, spec, lo, hi = load_frames(paths)
    width = window_width(T, t["window"])
    X = flat_windows(frames, width)
    if len(X) <= t["latent"]:
        raise UserError(f"{paths.song} has {len(X)} windows, too few for {t['latent']} principal components")
    pca = SkPCA(n_components=t["latent"], svd_solver="randomized", random_state=t["seed"]).fit(X)
    Z = pca.transform(X).astype(np.float32)
    target = paths.run_dir / "pca.npz"
    start, center, end = window_times(len(Z), width, spec["sample_rate"])
    with store.group_commit() as group:          # the components and the path, each with its record, as one unit
        store.save_npz(group.stage(target), components=pca.components_, mean=pca.mean_,
                       explained_variance_ratio=pca.explained_variance_ratio_, scale_min=lo, scale_max=hi)
        provenance.write_sidecar(group.stage(target), "pca", pca_settings(t), inputs={"spectrogram": spec},
                                 run=paths.run)
        store.save_npz(group.stage(paths.embedding), Z=Z, t_start=start, t_center=center, t_end=end)
        provenance.write_sidecar(group.stage(paths.embedding), "embedding", pca_settings(t), run=paths.run,
                                 architecture=PCA, n_points=len(Z), latent_dim=int(Z.shape[1]),
                                 points_per_second=spec["sample_rate"] / 1024.0, width=width,
                                 sample_rate=spec["sample_rate"], source=t["song"], spectrogram_sha256=spec["sha256"],
                                 inputs={"spectrogram": spec},
                                 explained_variance=float(pca.explained_variance_ratio_.sum()))
    return True


def divergence_settings(original_rule):
    """Every setting of stage 7 that shapes a divergence, as divergence.py records them
    (its own defaults, and the rule)."""
    import divergence as stage  # the stage script's own settings
    return {"K": stage.K, "EXCLUSION_RADIUS": stage.EXCLUSION_RADIUS, "ORIGINAL_RULE": bool(original_rule),
            "N_STEPS": stage.N_STEPS, "EVERY": stage.EVERY, "FIT_STEPS": stage.FIT_STEPS}


def divergence_stage(paths, original_rule, settings):
    """Stage 7 as divergence.py does it, with its defaults; its file is reused only when it
    was made with every one of those settings from the current embedding (checked in full).

    Returns (delta (M, S+1), origins, its checked record, scaled path Zs, whether it computed)."""
    from dae import stages
    wanted = divergence_settings(original_rule)
    Z, Zs, meta, field, rule = stages.knn_setup(paths, wanted["K"], wanted["EXCLUSION_RADIUS"], original_rule)
    tag = f"k{wanted['K']}_original" if original_rule else f"k{wanted['K']}_x{rule['exclusion_radius']}"
    target = paths.divergence(tag)
    chain = reusable(paths, "divergence", path=target, wanted=wanted)
    if chain is not None and chain["embedding"]["sha256"] == meta["sha256"]:
        saved = provenance.arrays(chain["divergence"], ("delta", "origins"))
        return saved["delta"], saved["origins"], chain["divergence"], Zs, False
    stages.divergence_run(
        paths, settings | wanted, k=wanted["K"], exclusion_radius=wanted["EXCLUSION_RADIUS"],
        original_rule=original_rule, n_steps=wanted["N_STEPS"], every=wanted["EVERY"],
        fit_steps=wanted["FIT_STEPS"])
    record = provenance.check(paths, "divergence", path=target)["divergence"]  # what is used is what was saved
    saved = provenance.arrays(record, ("delta", "origins"))
    return saved["delta"], saved["origins"], record, Zs, True


def _bce(x, x_hat):
    x_hat = np.clip(x_hat, 1e-7, 1 - 1e-7)
    return float(np.mean(-(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat))))


def reconstruction(t, paths, X):
    """Reconstruction BCE over all windows: the decoder's (training.reconstruction_bce),
    or for PCA the clipped inverse transform's."""
    if t["variant"] == PCA or t["settings"] is None:
        p = provenance.arrays(provenance.check(paths, "pca", path=paths.run_dir / "pca.npz")["pca"],
                              ("mean", "components"))
        total, n = 0.0, 0
        for i in range(0, len(X), 512):
            x = X[i:i + 512].astype(np.float64)
            x_hat = (x - p["mean"]) @ p["components"].T @ p["components"] + p["mean"]
            total += _bce(x, x_hat) * len(x)
            n += len(x)
        return total / n
    from dae import training
    chain, encoder, decoder, _ = training.load_models(paths)   # checked as one unit against its chain
    meta = chain["encoder"]
    F, T, S, _ = dataset.load(paths)
    frames = ((S.T - meta["scale_min"]) / (meta["scale_max"] - meta["scale_min"])).astype(np.float32)
    return training.reconstruction_bce(encoder, decoder, frames, meta["width"])


def trustworthiness(X, Z, points, k=10):
    """sklearn's trustworthiness (k neighbours) of Z against the windows X, on at
    most `points` evenly spaced windows."""
    from sklearn.manifold import trustworthiness as tw
    idx = np.unique(np.linspace(0, len(X) - 1, min(points, len(X))).round().astype(int))
    k = min(k, max(1, len(idx) // 2 - 1))
    return float(tw(X[idx], np.asarray(Z)[idx], n_neighbors=k))


def run_trial(t, prepared=None):
    """One trial, end to end; returns its result dict (never raises).

    prepared : prepare_song's answer for the trial's song (None: prepare it now).
    """
    t0 = time.time()
    key = trial_key(t)
    result = {"key": key, "song": layout.song_name(t["song"]), "source": t["song"], "variant": t["variant"],
              "seed": t["seed"], "window": t["window"], "latent": t["latent"], "settings": t["settings"],
              "host": socket.gethostname(), "pid": os.getpid()}
    log = Path(t["log_dir"]) / f"{key}.log" if t.get("log_dir") else None
    try:
        limit_threads(t["threads"])
        result["tf_threads"] = os.environ.get("TF_NUM_INTRAOP_THREADS", "default")
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        if log is not None:
            store.make_folder(log.parent)
        with (open(log, "a") if log is not None else contextlib.nullcontext(sys.stdout)) as out, \
                contextlib.redirect_stdout(out):
            _run_stages(t, prepared, result)
    except Exception as e:  # noqa: BLE001 - one failing trial must not stop the others
        result.update(status="failed", error=one_line(e, t["song"]))
        if not isinstance(e, UserError):
            result["traceback"] = traceback.format_exc(limit=6)
    result["seconds"] = time.time() - t0
    return result


def _run_stages(t, prepared, result):
    """The stages of one trial (run_trial catches what goes wrong)."""
    if prepared is None:
        prepared = prepare_song(t["song"], t["window"], t["data_dir"], t["output_dir"],
                                t["synth_seconds"], t["synth_rate"])
    if not prepared["ok"]:
        raise UserError(prepared["error"])
    s = t["settings"]
    run = run_folder(t)
    paths = song_paths(t["song"], t["data_dir"], t["output_dir"], run=run)
    computed = []
    if s is None:
        if pca_stage(t, paths):
            computed.append("pca")
    else:
        if train_stage(t, paths):
            computed.append("training")
        if embed_stage(t, paths):
            computed.append("embedding")
    metrics = measure(t, paths, computed)
    result.update(status="ok", run=run, computed=computed, **metrics)


def measure(t, paths, computed):
    """Every per-trial metric (see the README's experiment section)."""
    from dae.forecast import growth_rate, turning_angle
    import divergence as stage
    settings = _settings(t, seed=0 if t["settings"] is None else None)
    out, curves = {}, {}
    for tag, original in RULES:
        delta, origins, facts, Zs, did = divergence_stage(paths, original, settings)
        if did:
            computed.append(f"divergence_{tag}")
        mean = delta.mean(axis=0)
        curves[tag] = {"mean": mean.tolist(), "std": delta.std(axis=0).tolist(), "count": int(len(delta))}
        out[f"growth_{tag}"] = growth_rate(delta, 1, min(stage.FIT_STEPS, stage.N_STEPS))[0]
        sel = origins >= 1                       # the baseline needs z_{t-1}
        base = stats.constant_velocity(Zs, origins[sel], stage.N_STEPS)
        knn_mean, base_mean = delta[sel].mean(axis=0), base.mean(axis=0)
        curves[tag]["baseline_mean"] = base_mean.tolist()
        for h in HORIZONS:
            if h <= stage.N_STEPS:
                out[f"delta_{tag}_{h}"] = float(mean[h])
                out[f"skill_{tag}_{h}"] = float(stats.skill(knn_mean[h], base_mean[h]))
        if not original:
            out["exclusion_radius"] = facts.get("exclusion_radius")
            out["n_initial_conditions"] = int(len(origins))
    embedded = embedding.load(paths)          # checked with its chain
    Z, emb = embedded["Z"].astype(np.float64), embedded["meta"]
    out["made_from"] = made_from(embedded["chain"])
    out["turning_angle"] = turning_angle(Z)
    out["n_points"] = int(len(Z))
    frames, T, spec, lo, hi = load_frames(paths)
    X = flat_windows(frames, emb["width"])
    out["bce"] = reconstruction(t, paths, X)
    out["trustworthiness"] = trustworthiness(X, Z, t["trust_points"])
    out["curves"] = curves
    return out


# ---------------------------------------------------------------- saving and resuming

def trial_path(exp_dir, key):
    return Path(exp_dir) / "trials" / f"{key}.json"


def save_trial(exp_dir, result):
    store.save_json(trial_path(exp_dir, result["key"]), result)


def made_from(chain):
    """What a trial's numbers rest on: the song's audio and the embedding (sha256), and the
    divergence settings; a saved trial is reused only while all three are what they were."""
    return {"source_sha256": chain["spectrogram"]["inputs"]["audio"]["sha256"],
            "embedding_sha256": chain["embedding"]["sha256"],
            "divergence": {k: v for k, v in divergence_settings(False).items() if k != "ORIGINAL_RULE"}}


def current_source_sha256(t):
    """sha256 of trial t's audio as it is now (None when there is none yet: a synth song not made)."""
    try:
        return provenance.file_hash(dataset.find_audio(t["song"],
                                                       song_paths(t["song"], t["data_dir"], t["output_dir"])))
    except (UserError, OSError):
        return None


def still_valid(saved, t, sources):
    """Whether a saved trial result may stand for trial t: finished, with the same training
    settings, song, audio (sha256) and divergence settings. sources caches the audio hashes."""
    made = saved.get("made_from")
    if saved.get("status") != "ok" or saved.get("source") != t["song"] or not isinstance(made, dict) \
            or not same_settings(saved.get("settings"), t["settings"]):
        return False
    if t["song"] not in sources:
        sources[t["song"]] = current_source_sha256(t)
    wanted = {k: v for k, v in divergence_settings(False).items() if k != "ORIGINAL_RULE"}
    return made.get("source_sha256") == sources[t["song"]] and made.get("divergence") == wanted


def same_settings(saved, wanted):
    """Whether a saved trial's training settings are `wanted`; a setting the saved
    trial lacks (added to the project since) counts as its shared default."""
    if saved is None or wanted is None:
        return saved is None and wanted is None
    import settings as shared
    return all(saved.get(k, getattr(shared, k, None)) == v for k, v in wanted.items())


def load_trials(exp_dir, trials):
    """Trials already saved that still stand for these trials (`still_valid`): {key: result}."""
    done, sources = {}, {}
    for t in trials:
        key = trial_key(t)
        p = trial_path(exp_dir, key)
        if p.exists():
            try:
                r = json.loads(p.read_text())
            except ValueError:
                continue
            if isinstance(r, dict) and still_valid(r, t, sources):
                done[key] = r
    return done


def hms(seconds):
    seconds = int(round(max(0.0, seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Prints one line per finished trial: done / total, elapsed, ETA."""

    def __init__(self, total, already, todo, stream=sys.stdout):
        self.total, self.done, self.todo, self.finished = total, already, todo, 0
        self.t0, self.stream = time.time(), stream

    def __call__(self, r):
        self.done += 1
        self.finished += 1
        elapsed = time.time() - self.t0
        eta = elapsed / self.finished * (self.todo - self.finished)
        if r["status"] == "ok":
            what = f"ok in {r['seconds']:.0f} s" + (f" (computed: {', '.join(r['computed'])})" if r["computed"]
                                                   else " (every stage reused)")
        else:
            what = f"FAILED: {r['error']}"
        print(f"[{self.done}/{self.total}] {r['key']}: {what} | elapsed {hms(elapsed)}, ETA {hms(eta)}",
              file=self.stream, flush=True)


def check_address(address, timeout=5.0):
    """Fail fast, in one line, when nothing answers at a cluster address."""
    if not address or address == "auto":
        return
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address!r} should be host:port (e.g. 10.0.0.5:6379) or ray://host:10001")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        reason = "timed out" if isinstance(e, socket.timeout) else (e.strerror or type(e).__name__)
        raise UserError(f"no Ray cluster answers at {address} ({reason}); start one with `ray start --head` "
                        "on its head node, or leave --address empty for a local instance") from None


def local_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_on_ray(todo, cfg, on_result):
    """Run the trials as Ray tasks; call on_result(result) as each one ends."""
    address = cfg["ADDRESS"].strip()
    check_address(address)
    import ray
    if address:
        runtime_env = {"working_dir": str(ROOT), "excludes": [".venv", ".git", "data", "outputs", "*.mp4"]}
        kw = {"address": address}
    else:
        runtime_env = {"env_vars": {"PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}}
        kw = {"num_cpus": cfg["NUM_CPUS"] or local_cores()}
    try:
        ray.init(runtime_env=runtime_env, include_dashboard=False, log_to_driver=cfg["WORKER_LOGS"],
                 logging_level="ERROR", **kw)
    except Exception as e:  # noqa: BLE001
        raise UserError(f"could not start Ray{' at ' + address if address else ''}: {one_line(e)}") from None
    try:
        cpus = ray.cluster_resources().get("CPU", 0)
        print(f"Ray: {'cluster at ' + address if address else 'local instance'} with {cpus:g} CPUs, "
              f"{cfg['CPUS_PER_TRIAL']} per trial", flush=True)
        prep = ray.remote(num_cpus=1, max_retries=0)(prepare_song)
        trial = ray.remote(num_cpus=cfg["CPUS_PER_TRIAL"], max_retries=0)(run_trial)
        songs = {}
        pending = {}
        for t in todo:
            sk = (t["song"], t["window"])
            if sk not in songs:
                songs[sk] = prep.remote(t["song"], t["window"], t["data_dir"], t["output_dir"],
                                        t["synth_seconds"], t["synth_rate"])
            pending[trial.remote(t, songs[sk])] = t
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            t = pending.pop(ready[0])
            try:
                r = ray.get(ready[0])
            except Exception as e:  # noqa: BLE001 - a worker that died, a lost node
                r = {"key": trial_key(t), "song": layout.song_name(t["song"]), "source": t["song"],
                     "variant": t["variant"], "seed": t["seed"], "window": t["window"], "latent": t["latent"],
                     "settings": t["settings"], "status": "failed", "seconds": 0.0,
                     "error": f"the Ray task failed: {one_line(e)}"}
            on_result(r)
    finally:
        ray.shutdown()


def run_in_process(todo, cfg, on_result):
    """One trial at a time in this process (no Ray)."""
    prepared = {}
    for t in todo:
        sk = (t["song"], t["window"])
        if sk not in prepared:
            prepared[sk] = prepare_song(t["song"], t["window"], t["data_dir"], t["output_dir"],
                                        t["synth_seconds"], t["synth_rate"])
        on_result(run_trial(dict(t, threads=0), prepared[sk]))


def run_experiment(cfg, definitions):
    """The whole experiment: grid, trials (skipping finished ones), report. Returns the results."""
    trials, variants, songs = build_grid(cfg, definitions)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", cfg["NAME"]):
        raise UserError(f"NAME {cfg['NAME']!r} must be a plain folder name (letters, digits, '-', '_', '.')")
    exp_dir = Path(cfg["OUTPUT_DIR"]) / "experiments" / cfg["NAME"]
    for folder in (exp_dir, cfg["DATA_DIR"]):      # whatever is in the way is said before any work
        store.check_folder(folder)
    keys = [trial_key(t) for t in trials]
    results = load_trials(exp_dir, trials)
    todo = [t for t, k in zip(trials, keys) if k not in results]
    print(f"experiment {cfg['NAME']}: {len(songs)} songs x {len(variants)} variants x "
          f"{len(split(cfg['SEEDS']))} seeds x {len(split(cfg['WINDOWS']))} windows x "
          f"{len(split(cfg['LATENT_DIMS']))} latent sizes = {len(trials)} trials; "
          f"{len(results)} already done, {len(todo)} to run", flush=True)
    if todo:
        progress = Progress(len(trials), len(results), len(todo))

        def on_result(r):
            save_trial(exp_dir, r)
            results[r["key"]] = r
            progress(r)
        (run_on_ray if cfg["USE_RAY"] else run_in_process)(todo, cfg, on_result)
    ordered = [results[k] for k in keys if k in results]
    files = report(exp_dir, ordered, variants, cfg)
    print(f"saved {', '.join(str(f) for f in files)}")
    failed = [r for r in ordered if r["status"] != "ok"]
    if cfg.get("PUBLISH") and not failed:
        print(f"published {', '.join(str(f) for f in publish(exp_dir, cfg['NAME']))}")
    if failed:
        raise UserError(f"{len(failed)} of {len(trials)} trials failed (reasons above and in {files[0]}); "
                        "fix them and run the same command again: finished trials are kept")
    return ordered


# ---------------------------------------------------------------- the report

# column, label, lower is better, how a win reads in words
METRICS = [("turning_angle", "mean turning angle (deg)", True, "smoother (lower mean turning angle)"),
           ("bce", "reconstruction BCE", True, "lower reconstruction BCE"),
           ("trustworthiness", "trustworthiness (k = 10)", False, "more trustworthy"),
           *[(f"delta_{r}_{h}", f"δ step {h}, {'exclusion' if r == 'x' else 'original'} rule", True,
              f"lower δ at step {h}") for r in ("x", "o") for h in HORIZONS],
           *[(f"skill_{r}_{h}", f"skill h = {h}, {'exclusion' if r == 'x' else 'original'} rule", False,
              f"higher skill at horizon {h}") for r in ("x", "o") for h in HORIZONS],
           ("growth_x", "growth of ln δ per step, exclusion rule", True, "slower growth of ln δ"),
           ("growth_o", "growth of ln δ per step, original rule", True, "slower growth of ln δ")]
CSV_FIELDS = ["key", "song", "variant", "seed", "window", "latent", "status", "error", "seconds", "host", "run",
              "n_points", "exclusion_radius", *[m[0] for m in METRICS]]


def trials_csv(results):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in results:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items() if k in CSV_FIELDS})
    return buf.getvalue()


def variant_pairs(variants):
    """(A, B) pairs, A compared against B: PCA is always B; otherwise the later variant is A."""
    pairs = []
    for a, b in itertools.combinations(variants, 2):
        pairs.append((a, b) if b == PCA else (b, a))
    return pairs


def compare(results, a, b):
    """Paired statistics of every metric for variant a against b over matching (song, seed, window, latent)."""
    ok = [r for r in results if r["status"] == "ok"]
    by = {}
    for r in ok:
        by.setdefault((r["song"], r["seed"], r["window"], r["latent"]), {})[r["variant"]] = r
    matched = [v for v in by.values() if a in v and b in v]
    table = {}
    for col, label, lower, words in METRICS:
        xa = [m[a].get(col, float("nan")) for m in matched]
        xb = [m[b].get(col, float("nan")) for m in matched]
        table[col] = stats.paired(xa, xb, lower_is_better=lower)
    return table


def sentence(a, b, table):
    """The answer for one pair of variants, in words from the numbers."""
    def part(col, words, rule_note=""):
        s = table[col]
        return f"{words} in {s['a_wins']} of {s['n']} pairs{rule_note} (p {stats.fmt_p(s['p'])})"
    t = table["turning_angle"]
    if t["n"] == 0:
        return f"{a} vs {b}: no (song, seed) pair has both."
    bits = [part("turning_angle", f"{a} smoother than {b}"), part("bce", "lower reconstruction BCE"),
            part("trustworthiness", "more trustworthy")]
    for h in (1, 29):
        sx, so = table[f"delta_x_{h}"], table[f"delta_o_{h}"]
        bits.append(f"δ at step {h} lower in {sx['a_wins']} of {sx['n']} under the exclusion rule "
                    f"(p {stats.fmt_p(sx['p'])}), {so['a_wins']} of {so['n']} under the original rule "
                    f"(p {stats.fmt_p(so['p'])})")
    for h in (1, 29):
        sx = table[f"skill_x_{h}"]
        bits.append(f"higher skill over constant velocity at horizon {h} in {sx['a_wins']} of {sx['n']} "
                    f"(exclusion rule, p {stats.fmt_p(sx['p'])})")
    sig = significant(a, b, table)
    tail = (f" With p < 0.05 (sign test): {'; '.join(sig)}." if sig
            else " No difference reaches p < 0.05 (sign test).")
    return "; ".join(bits) + "." + tail


def significant(a, b, table, level=0.05):
    """The metrics whose sign test gives p < level, grouped, each with the variant that wins."""
    groups = {}
    for col, label, _, _ in METRICS:
        s = table[col]
        if not s["n"] or s["p"] >= level:
            continue
        winner = a if s["a_wins"] > s["b_wins"] else b
        kind, *rest = col.split("_")
        if kind in ("delta", "skill"):
            rule = "exclusion" if rest[0] == "x" else "original"
            name = f"δ under the {rule} rule at step" if kind == "delta" else f"skill under the {rule} rule at horizon"
            groups.setdefault((name, winner), []).append(rest[1])
        else:
            groups.setdefault((label.split(" (")[0], winner), [])
    out = []
    for (name, winner), steps in groups.items():
        where = f"{'s' if len(steps) > 1 else ''} {', '.join(steps)}" if steps else ""
        out.append(f"{name}{where} ({winner} better)")
    return out


def _fmt(x, digits=4):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a" if x is None or math.isnan(x) else ("-inf" if x < 0 else "inf")
    return f"{x:.{digits}g}"


def summary_markdown(results, variants, cfg, figures):
    ok = [r for r in results if r["status"] == "ok"]
    failed = [r for r in results if r["status"] != "ok"]
    songs = sorted({r["song"] for r in results})
    lines = [f"# Experiment `{cfg['NAME']}`", "",
             f"{len(results)} trials: {len(songs)} songs ({', '.join(songs)}) x variants {', '.join(variants)} "
             f"x seeds {cfg['SEEDS']} (window {cfg['WINDOWS']} s, latent size {cfg['LATENT_DIMS']}, "
             f"epochs {cfg['EPOCHS'] or 'as the original'}); {len(ok)} finished, {len(failed)} failed.", ""]
    for r in failed:
        lines.append(f"- failed: `{r['key']}`: {r['error']}")
    if failed:
        lines.append("")
    lines += ["## The answer in words", "",
              "Each pair is the same song, seed, window and latent size; a win is the better value of the metric; "
              "p is the exact two-sided sign test (ties left out). Pairs from the same song share that song, "
              "so the p-values speak for these songs across seeds, not for songs in general.", ""]
    pairs = variant_pairs(variants)
    tables = {(a, b): compare(results, a, b) for a, b in pairs}
    for (a, b), table in tables.items():
        lines.append(f"- **{a} vs {b}:** {sentence(a, b, table)}")
    lines += ["", "## Means per variant", "",
              "| variant | trials | turning angle (deg) | BCE | trustworthiness | δ1 / δ29 exclusion | "
              "δ1 / δ29 original | skill 1 / 29 exclusion | skill 1 / 29 original |", "|---|---|---|---|---|---|---|---|---|"]
    for v in variants:
        rs = [r for r in ok if r["variant"] == v]

        def m(col):
            vals = np.array([r[col] for r in rs], dtype=float)
            vals = vals[np.isfinite(vals)]
            return float(vals.mean()) if vals.size else float("nan")
        lines.append(f"| {v} | {len(rs)} | {_fmt(m('turning_angle'), 3)} | {_fmt(m('bce'))} | "
                     f"{_fmt(m('trustworthiness'), 3)} | {_fmt(m('delta_x_1'), 3)} / {_fmt(m('delta_x_29'), 3)} | "
                     f"{_fmt(m('delta_o_1'), 3)} / {_fmt(m('delta_o_29'), 3)} | {_fmt(m('skill_x_1'), 3)} / "
                     f"{_fmt(m('skill_x_29'), 3)} | {_fmt(m('skill_o_1'), 3)} / {_fmt(m('skill_o_29'), 3)} |")
    for (a, b), table in tables.items():
        lines += ["", f"## {a} vs {b}: paired differences ({a} - {b})", "",
                  f"| metric | pairs | mean difference | 95% bootstrap CI | {a} wins | {b} wins | ties | sign-test p |",
                  "|---|---|---|---|---|---|---|---|"]
        for col, label, lower, _ in METRICS:
            s = table[col]
            lines.append(f"| {label} ({'lower' if lower else 'higher'} is better) | {s['n']} | {_fmt(s['mean_diff'])} | "
                         f"[{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}] | {s['a_wins']} | {s['b_wins']} | {s['ties']} | "
                         f"{_fmt(s['p'], 3)} |")
    lines += ["", "## Figures", ""]
    for f in figures:
        lines.append(f"![{f.stem}]({f.name})")
        lines.append("")
    lines += ["Metrics: mean turning angle of the embedded path; δ_i = |ẑ_i - z_{t0+i}| of 30-step KNN forecasts "
              "(K = 5) from every 10th point, in the path scaled to [0, 1] per dimension, under the default "
              "exclusion radius (the window's width) and the original rule (no exclusion, nearest dropped); "
              "skill_h = 1 - mean δ_knn / mean δ_baseline at step h, the baseline being constant-velocity "
              "extrapolation ẑ_{t+i} = z_t + i (z_t - z_{t-1}) from the same initial conditions (skill 0 when both "
              "are exact); reconstruction BCE over every window (PCA: its clipped inverse transform); "
              "trustworthiness of the embedding against the flattened windows (scikit-learn, k = 10, at most "
              f"{cfg['TRUST_POINTS']} evenly spaced windows). Generated by `experiment.py` from the trial files.", ""]
    return "\n".join(lines)


def figures(exp_dir, results, variants):
    """δ curves with standard-error bands per variant (a panel per song plus pooled,
    a row per KNN rule) and turning angles per variant. Returns the PNG paths."""
    from dae.plotting import _pyplot
    plt = _pyplot()
    ok = [r for r in results if r["status"] == "ok"]
    if not ok:
        return []
    songs = sorted({r["song"] for r in ok})
    panels = songs + (["pooled"] if len(songs) > 1 else [])
    colours = {v: plt.cm.tab10(i % 10) for i, v in enumerate(variants)}
    fig, axes = plt.subplots(2, len(panels), figsize=(4 * len(panels), 7), squeeze=False, sharex=True,
                             layout="constrained")
    for row, (tag, rule) in enumerate((("x", "exclusion rule"), ("o", "original rule"))):
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            for v in variants:
                rs = [r for r in ok if r["variant"] == v and (panel == "pooled" or r["song"] == panel)]
                if not rs:
                    continue
                c = [r["curves"][tag] for r in rs]
                mean, se = stats.pooled_curve([x["mean"] for x in c], [x["std"] for x in c],
                                              [[x["count"]] * len(x["mean"]) for x in c])
                steps = np.arange(len(mean))
                ax.plot(steps, mean, color=colours[v], label=f"{v} ({len(rs)})")
                ax.fill_between(steps, mean - se, mean + se, color=colours[v], alpha=0.25)
            ax.set_title(f"{panel}: {rule}", fontsize=10)
            ax.set_xlabel("forecast step")
            if col == 0:
                ax.set_ylabel("mean δ (scaled path)")
            ax.legend(fontsize=8)
    fig.suptitle("KNN forecast divergence per variant (bands: standard error over every initial condition)")
    delta_png = Path(exp_dir) / "delta_curves.png"
    with store.atomic_path(delta_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(1.8 * len(variants) + 2, 4), layout="constrained")
    markers = "osD^v<>p*h"
    pairs = {}
    for r in ok:
        pairs.setdefault((r["song"], r["seed"], r["window"], r["latent"]), {})[r["variant"]] = r["turning_angle"]
    for (song, *_), vals in pairs.items():
        xs = [i for i, v in enumerate(variants) if v in vals]
        ax.plot(xs, [vals[variants[i]] for i in xs], color="0.7", lw=0.8, zorder=1)
    for i, v in enumerate(variants):
        for j, song in enumerate(songs):
            ys = [r["turning_angle"] for r in ok if r["variant"] == v and r["song"] == song]
            ax.scatter([i] * len(ys), ys, color=colours[v], marker=markers[j % len(markers)], zorder=2,
                       label=song if i == 0 else None)
        ys = [r["turning_angle"] for r in ok if r["variant"] == v]
        if ys:
            ax.hlines(np.mean(ys), i - 0.3, i + 0.3, color="k", lw=2, zorder=3)
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylabel("mean turning angle (deg), lower = smoother")
    ax.set_title("Turning angle per trial (marker: song; grey: same song and seed; bar: mean)", fontsize=10)
    ax.legend(fontsize=8)
    angle_png = Path(exp_dir) / "turning_angles.png"
    with store.atomic_path(angle_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return [delta_png, angle_png]


def report(exp_dir, results, variants, cfg):
    """Write trials.csv, summary.md and the figures. Returns their paths (CSV first)."""
    exp_dir = Path(exp_dir)
    csv_path, md_path = exp_dir / "trials.csv", exp_dir / "summary.md"
    store.save_text(csv_path, trials_csv(results))
    figs = figures(exp_dir, results, variants)
    store.save_text(md_path, summary_markdown(results, variants, cfg, figs))
    return [csv_path, md_path, *figs]


def publish(exp_dir, name, root=ROOT):
    """Copy an experiment's report into the repository: docs/experiment_<name>.md
    (the whole summary) with its figures, and the README's generated section
    `experiment_<name>` (the words, the means, R-F vs R and the figures), if the
    README has one. Returns the files written."""
    import shutil
    from dae import docs
    exp_dir, root = Path(exp_dir), Path(root)
    md = (exp_dir / "summary.md").read_text()
    written = []
    for fig in ("delta_curves", "turning_angles"):
        if (exp_dir / f"{fig}.png").exists():
            target = root / "docs" / f"experiment_{name}_{fig}.png"
            with store.atomic_path(target) as tmp:
                shutil.copyfile(exp_dir / f"{fig}.png", tmp)
            written.append(target)
            md = md.replace(f"]({fig}.png)", f"](experiment_{name}_{fig}.png)")
    full = root / "docs" / f"experiment_{name}.md"
    store.save_text(full, md)
    written.append(full)
    sections = re.split(r"\n(?=## )", md)
    keep = [s.strip() for s in sections[1:]
            if s.startswith(("## The answer in words", "## Means per variant", "## R-F vs R:"))]
    part = "\n\n".join([sections[0].split("\n", 2)[2].strip(), *keep])
    part = re.sub(r"^## ", "#### ", part, flags=re.M)
    part += (f"\n\n![δ curves per variant](docs/experiment_{name}_delta_curves.png)\n\n"
             f"![Turning angles per variant](docs/experiment_{name}_turning_angles.png)\n\n"
             f"The whole summary, every pair of variants and every metric: [docs/experiment_{name}.md]"
             f"(docs/experiment_{name}.md).\n")
    if docs.splice(root / "README.md", f"experiment_{name}", part):
        written.append(root / "README.md")
    return written
