"""The experiment's trials: one trial's stages and what it measures, saving and resuming trials,
running them on Ray or in this process, and the whole experiment (`run_experiment`).

A trial (a dict of `dae.grid`) runs the pipeline's typed stage functions
(`dae.stages`) with configs built from the trial and from the stage configs
the caller gives (`training`: a `config.Training` whose learning rate,
chunks, order and every other field a variant does not set are the trial's;
`divergence`: the `config.Divergence` whose K, exclusion radius, steps, every
and fit steps every trial uses). Configs are frozen and built afresh for each
trial, so nothing carries over from one trial to the next in one process.

Every artifact lands in the usual run folders, and a stage whose result is
already there is reused only when its record says it was made with every one
of the trial's settings from the trial's inputs (`reusable`), never
recomputed. A trial's result is saved as it ends
(OUTPUT_DIR/experiments/NAME/trials/<key>.json) and stands for that trial on
the next run while it is `still_valid`.
"""
import contextlib
import dataclasses
import json
import logging
import os
import re
import socket
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from dae import config, corpus, dataset, embedding, grid, layout, provenance, report, stages, stats, store, synth
from dae.errors import SettingError, UserError
from dae.features import song_features
from dae.grid import PCA, TRAIN_KEYS, split, trial_key

RETRIES = 3   # a trial whose Ray worker died (a lost node, killed for memory) runs again up to this many times
CODE = Path(__file__).resolve().parents[1]   # the project's code: on local Ray workers' path, shipped to a cluster's


# ---------------------------------------------------------------- the trial's stage configs

@contextlib.contextmanager
def refused_by(script):
    """A setting a stage's config refuses (`SettingError`) becomes one line that names
    the stage and the setting as the user spells it: 'train_model.py refused its settings: ALPHA=-1 ...'."""
    try:
        yield
    except SettingError as e:
        raise UserError(f"{script} refused its settings: {e.line(user_names=True)}") from None


def training_config(t, training: config.Training):
    """The `config.Training` trial t trains with: `training` with the trial's song, folders,
    window, latent size, seed and variant settings, epochs resolved (0: as the original),
    resumable and silent. Raises a one-line UserError for a setting the stage refuses."""
    from dae.training import default_epochs
    s = t["settings"]
    with refused_by("train_model.py"):
        cfg = dataclasses.replace(training, song=t["song"], source="audio", window_seconds=t["window"],
                                  latent_dim=t["latent"], seed=t["seed"], data_dir=t["data_dir"],
                                  output_dir=t["output_dir"], **{k.lower(): s[k] for k in TRAIN_KEYS},
                                  resume=True, verbose=0)
        return dataclasses.replace(cfg, epochs=cfg.epochs or default_epochs(cfg.window_seconds))


def record_settings(t, seed=None):
    """The settings the experiment's own records of trial t carry (a PCA run's, the divergences'):
    SONG, WINDOW_SECONDS, LATENT_DIM, SEED, DATA_DIR, OUTPUT_DIR and the variant's settings."""
    return {"SONG": t["song"], "WINDOW_SECONDS": t["window"], "LATENT_DIM": t["latent"],
            "SEED": t["seed"] if seed is None else seed, "DATA_DIR": t["data_dir"], "OUTPUT_DIR": t["output_dir"],
            **(t["settings"] or {})}


def divergence_rule(divergence: config.Divergence, original_rule):
    """Every setting that shapes a divergence, as divergence.py records them: K, EXCLUSION_RADIUS,
    ORIGINAL_RULE, N_STEPS, EVERY, FIT_STEPS (name -> value)."""
    return dataclasses.replace(divergence, original_rule=bool(original_rule)).rule()


def saved_rule(divergence: config.Divergence):
    """The divergence settings a saved trial rests on (the rule aside: a trial uses both)."""
    return {k: v for k, v in divergence_rule(divergence, False).items() if k != "ORIGINAL_RULE"}


def pca_run_name(window, latent, seed):
    return f"w{float(window):g}s_PCA_z{int(latent)}_s{int(seed)}"


def pca_paths(t):
    """Paths of PCA trial t's run (a trained variant's are `layout.run_paths(training_config(...))`)."""
    return layout.Paths(t["song"], t["data_dir"], t["output_dir"],
                        run=pca_run_name(t["window"], t["latent"], t["seed"]))


# ---------------------------------------------------------------- reuse

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


def training_settings(cfg: config.Training):
    """The settings a trial's model must have been trained with, as train_model.py records them
    (the song and folders are checked through the chain instead: the same audio may be named two ways)."""
    recorded = cfg.settings()
    return {k: recorded[k] for k in ("WINDOW_SECONDS", "LATENT_DIM", "SEED", *TRAIN_KEYS) if k != "EPOCHS"}


def trained_epochs(paths, cfg: config.Training):
    """Epochs of the run's committed model when it was trained with `cfg`'s settings on the
    current spectrogram (checked in full); None when there is no such model."""
    chain = reusable(paths, "encoder", wanted=training_settings(cfg))
    return None if chain is None else int(chain["encoder"].get("epochs", 0))


# ---------------------------------------------------------------- the stages of one trial

def prepare_song(song, window, data_dir, output_dir, synth_seconds=40.0, synth_rate=44100):
    """Stage 1 for one song (once, before its trials): synthesise a synth-<n> song
    (`synth_seconds` s at `synth_rate` Hz) if needed, then save its spectrogram for a
    `window`-second window unless the saved one is of the same audio.

    Returns {"ok": True, "computed": bool} or {"ok": False, "error": one line}; never raises.
    """
    try:
        paths = layout.Paths(song, data_dir, output_dir)
        m = grid.SYNTH.match(str(song))
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
        with refused_by("save_dataset.py"):
            stages.save_dataset(config.Spectrogram(song=song, window_seconds=window, data_dir=data_dir,
                                                   output_dir=output_dir, plot=False))
        return {"ok": True, "computed": True}
    except Exception as e:  # noqa: BLE001 - every failure becomes the trial's one-line reason
        return {"ok": False, "error": one_line(e, song)}


def train_stage(cfg: config.Training, paths):
    """Stage 2: train the run of `cfg` (`training_config`), unless its model was trained with
    exactly these settings for exactly cfg.epochs. Returns True when it trained.

    A model with the trial's settings but more epochs than asked is never used
    for the trial (it would be reported as the asked number) nor replaced (it
    may be the user's): the trial fails, saying so.
    """
    epochs = cfg.epochs
    done = trained_epochs(paths, cfg)
    if done == epochs:
        return False
    if done is not None and done > epochs:
        raise UserError(f"{paths.run_dir} holds a {done}-epoch model with this trial's settings, and the trial "
                        f"asks for {epochs}; run the experiment with --epochs {done}, or move that run folder "
                        "away to train a new one")
    with refused_by("train_model.py"):
        stages.train_model(cfg)
    done = trained_epochs(paths, cfg)
    if done != epochs:
        raise UserError(f"after training, {paths.run_dir} holds no {epochs}-epoch model with this trial's "
                        f"settings ({'none' if done is None else f'{done} epochs'}); move that run folder away "
                        "and run the experiment again")
    return True


def embed_stage(cfg: config.Training, paths):
    """Stage 3: embed the run's song (without pictures) unless its embedding was made by the
    run's current encoder (checked in full). Returns True when it embedded."""
    chain = reusable(paths, "embedding")
    if chain is not None and "encoder" in chain:
        return False
    with refused_by("embed_audio.py"):
        stages.embed_audio(cfg.pick(config.Embedding, plot=False))
    return True


def load_frames(paths):
    """The saved spectrogram of a song scaled to [0, 1]: (frames (n_time, height), T, meta, lo, hi)."""
    from dae.spectrogram import scale_unit
    F, T, S, meta = dataset.load(paths)
    frames, lo, hi = scale_unit(S.T)
    return frames, T, meta, lo, hi


def flat_windows(frames, width):
    """Every window of `width` columns of frames (n_time, height), flattened: (n_windows, width * height)."""
    from dae.spectrogram import sliding_windows
    W = sliding_windows(frames, width)
    return np.ascontiguousarray(W).reshape(len(W), -1)


def pca_settings(t):
    """The settings a PCA run's records carry (what the components depend on besides the spectrogram)."""
    return record_settings(t, seed=0) | {"PCA_SEED": t["seed"]}


def pca_stage(t, paths):
    """The PCA baseline: the first d principal components of the song's flattened
    windows, saved as the run's embedding (and pca.npz) in its run folder; reused when
    both were made with the trial's settings from the current spectrogram. Returns True when it computed."""
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


def divergence_stage(paths, original_rule, settings, divergence: config.Divergence):
    """Stage 7 with `divergence`'s settings under one rule; its file is reused only when it was
    made with every one of those settings from the current embedding (checked in full).
    settings : what its record carries besides the rule (`record_settings`).

    Returns (delta (M, S+1), origins (M,), its checked record, scaled path Zs (N, d), whether it computed)."""
    wanted = divergence_rule(divergence, original_rule)
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


# ---------------------------------------------------------------- what a trial measures

def _bce(x, x_hat):
    x_hat = np.clip(x_hat, 1e-7, 1 - 1e-7)
    return float(np.mean(-(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat))))


def reconstruction(t, paths, X, embedded=None):
    """Reconstruction BCE over all windows X (n, width * height): the decoder's on the run's
    embedding (`decoded_bce`: the numbers of training.reconstruction_bce), or for PCA the clipped
    inverse transform's. embedded : the run's checked embedding (`embedding.load`; None: load it)."""
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
    return decoded_bce(paths, embedding.load(paths) if embedded is None else embedded)


def decoded_bce(paths, embedded, batch_size=1024):
    """Mean binary cross-entropy of the run's decoder reconstructing every window from the run's
    embedding `embedded` (`embedding.load`: checked, and made by the run's committed encoder).

    The embedding is the encoder on every window in batches of `batch_size`
    (`embedding.encode`), so decoding it batch by batch gives exactly what
    `training.reconstruction_bce(encoder, decoder, frames, width)` gives, without
    loading the encoder and encoding every window a second time.
    """
    import keras
    chain = provenance.check(paths, "decoder")          # the model unit and the spectrogram it was trained on
    meta = chain["encoder"]
    if embedded["chain"]["encoder"]["sha256"] != meta["sha256"]:
        raise UserError(f"{paths.embedding} was made by another encoder than {meta['path']} holds now; "
                        "run the experiment again")
    decoder = provenance.load_keras(chain["decoder"])
    F, T, S = dataset.arrays(chain["spectrogram"])
    frames = ((S.T - meta["scale_min"]) / (meta["scale_max"] - meta["scale_min"])).astype(np.float32)
    Z, width = embedded["Z"], int(meta["width"])
    if len(Z) != len(frames) - width + 1:
        raise UserError(f"{paths.embedding} holds {len(Z)} points for {len(frames) - width + 1} windows; "
                        f"{embedding.EMBED_HINT.replace(' first', '')}")
    total, count = 0.0, 0
    for x in embedding.window_batches(frames, width, batch_size):
        x_hat = decoder.predict_on_batch(Z[count:count + len(x)])
        bce = keras.losses.binary_crossentropy(x.reshape(len(x), -1), x_hat.reshape(len(x), -1))
        total += float(np.sum(bce))
        count += len(x)
    return total / count


def trustworthiness(X, Z, points, k=10):
    """sklearn's trustworthiness (k neighbours) of Z (n, d) against the windows X (n, width * height),
    on at most `points` evenly spaced windows."""
    from sklearn.manifold import trustworthiness as tw
    idx = np.unique(np.linspace(0, len(X) - 1, min(points, len(X))).round().astype(int))
    k = min(k, max(1, len(idx) // 2 - 1))
    return float(tw(X[idx], np.asarray(Z)[idx], n_neighbors=k))


def made_from(chain, divergence: config.Divergence):
    """What a trial's numbers rest on: the song's audio and the embedding (sha256), and the
    divergence settings; a saved trial is reused only while all three are what they were."""
    return {"source_sha256": chain["spectrogram"]["inputs"]["audio"]["sha256"],
            "embedding_sha256": chain["embedding"]["sha256"], "divergence": saved_rule(divergence)}


def measure(t, paths, computed, divergence: config.Divergence):
    """Every per-trial metric (`dae.report.METRICS`, see the README's experiment section), its δ
    curves and what it rests on; appends the divergences it computed to `computed`."""
    from dae.forecast import growth_rate, turning_angle
    settings = record_settings(t, seed=0 if t["settings"] is None else None)
    n_steps = divergence.n_steps
    out, curves = {}, {}
    for tag, original in report.RULES:
        delta, origins, facts, Zs, did = divergence_stage(paths, original, settings, divergence)
        if did:
            computed.append(f"divergence_{tag}")
        mean = delta.mean(axis=0)
        curves[tag] = {"mean": mean.tolist(), "std": delta.std(axis=0).tolist(), "count": int(len(delta))}
        out[f"growth_{tag}"] = growth_rate(delta, 1, min(divergence.fit_steps, n_steps))[0]
        sel = origins >= 1                       # the baseline needs z_{t-1}
        base = stats.constant_velocity(Zs, origins[sel], n_steps)
        knn_mean, base_mean = delta[sel].mean(axis=0), base.mean(axis=0)
        curves[tag]["baseline_mean"] = base_mean.tolist()
        for h in report.HORIZONS:
            if h <= n_steps:
                out[f"delta_{tag}_{h}"] = float(mean[h])
                out[f"skill_{tag}_{h}"] = float(stats.skill(knn_mean[h], base_mean[h]))
        if not original:
            out["exclusion_radius"] = facts.get("exclusion_radius")
            out["n_initial_conditions"] = int(len(origins))
    embedded = embedding.load(paths)          # checked with its chain
    Z, emb = embedded["Z"].astype(np.float64), embedded["meta"]
    out["made_from"] = made_from(embedded["chain"], divergence)
    out["turning_angle"] = turning_angle(Z)
    out["n_points"] = int(len(Z))
    frames, T, spec, lo, hi = load_frames(paths)
    X = flat_windows(frames, emb["width"])
    out["bce"] = reconstruction(t, paths, X, embedded)
    out["trustworthiness"] = trustworthiness(X, Z, t["trust_points"])
    out["curves"] = curves
    return out


# ---------------------------------------------------------------- one trial

def keras_backend():
    """The Keras backend of this process, without importing Keras (so TensorFlow's threads can still be
    set before it loads): Keras's own answer once loaded, else KERAS_BACKEND, else ~/.keras/keras.json's."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        return json.loads((home / "keras.json").read_text()).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def limit_threads(n):
    """At most n threads for the Keras backend in this process (0: leave the backend's default).

    TensorFlow: its intra- and inter-op thread pools (the environment, and its config once loaded).
    PyTorch: torch.set_num_threads. JAX: nothing here (XLA's CPU threads are set by XLA_FLAGS
    before it loads).
    """
    if not (n and n > 0):
        return
    backend = keras_backend()
    if backend == "tensorflow":
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(n)
        os.environ["TF_NUM_INTEROP_THREADS"] = str(max(1, n))
        if "tensorflow" in sys.modules:
            tf = sys.modules["tensorflow"]
            try:
                tf.config.threading.set_intra_op_parallelism_threads(n)
                tf.config.threading.set_inter_op_parallelism_threads(max(1, n))
            except (RuntimeError, AttributeError):  # already running: the environment set it
                pass
    elif backend == "torch":
        import torch
        torch.set_num_threads(n)


def one_line(e, song=None):
    """The one-line reason of exception e: a UserError's own line, else its type and first line
    (naming `song` when the text does not)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if not isinstance(e, UserError):
        text = f"{type(e).__name__}: {text}" if text else type(e).__name__
        if song is not None and str(song) not in text:
            text = f"{song}: {text}"
    return text


def trial_result(t):
    """What every result of trial t starts with (a finished, failed or lost trial alike); a corpus
    clip's trial also names its clip (`corpus.clip_facts`: source file, offset, package, sha256s)."""
    clip = corpus.clip_facts(t["song"])
    return {"key": trial_key(t), "song": layout.song_name(t["song"]), "source": t["song"], "variant": t["variant"],
            "seed": t["seed"], "window": t["window"], "latent": t["latent"], "settings": t["settings"],
            "group": clip["package"] if clip else "", **({"clip": clip} if clip else {})}


def run_trial(t, prepared=None, *, training: config.Training = None, divergence: config.Divergence = None):
    """One trial, end to end; returns its result dict (never raises).

    prepared : prepare_song's answer for the trial's song (None: prepare it now).
    training, divergence : the stage configs (`run_experiment`); default their classes' defaults.
    The trial's output (stdout and stderr) goes to log_dir/<key>.log when t["log_dir"] is set.
    """
    training = config.Training() if training is None else training
    divergence = config.Divergence() if divergence is None else divergence
    t0, cpu0 = time.time(), time.process_time()
    result = trial_result(t) | {"host": socket.gethostname(), "pid": os.getpid()}
    log = Path(t["log_dir"]) / f"{result['key']}.log" if t.get("log_dir") else None
    try:
        limit_threads(t["threads"])
        result["tf_threads"] = os.environ.get("TF_NUM_INTRAOP_THREADS", "default")
        logging.getLogger("tensorflow").setLevel(logging.ERROR)     # no effect unless TensorFlow runs
        if log is not None:
            store.make_folder(log.parent)
        with contextlib.ExitStack() as stack:
            if log is not None:
                out = stack.enter_context(open(log, "a"))
                stack.enter_context(contextlib.redirect_stdout(out))
                stack.enter_context(contextlib.redirect_stderr(out))
            _run_stages(t, prepared, result, training, divergence)
    except Exception as e:  # noqa: BLE001 - one failing trial must not stop the others
        result.update(status="failed", error=one_line(e, t["song"]))
        if not isinstance(e, UserError):
            result["traceback"] = traceback.format_exc(limit=6)
    result["seconds"] = time.time() - t0
    result["cpu_seconds"] = time.process_time() - cpu0   # every thread's; far below `seconds`: the cores were shared
    return result


def _run_stages(t, prepared, result, training, divergence):
    """The stages of one trial (run_trial catches what goes wrong)."""
    if prepared is None:
        prepared = prepare_song(t["song"], t["window"], t["data_dir"], t["output_dir"],
                                t["synth_seconds"], t["synth_rate"])
    if not prepared["ok"]:
        raise UserError(prepared["error"])
    computed = []
    if t["settings"] is None:
        paths = pca_paths(t)
        if pca_stage(t, paths):
            computed.append("pca")
    else:
        cfg = training_config(t, training)
        paths = layout.run_paths(cfg)
        if train_stage(cfg, paths):
            computed.append("training")
        if embed_stage(cfg, paths):
            computed.append("embedding")
    metrics = measure(t, paths, computed, divergence)
    result.update(status="ok", run=paths.run, computed=computed, **metrics)


# ---------------------------------------------------------------- saving and resuming

def trial_path(exp_dir, key):
    return Path(exp_dir) / "trials" / f"{key}.json"


def save_trial(exp_dir, result):
    store.save_json(trial_path(exp_dir, result["key"]), result)


def current_source_sha256(t):
    """sha256 of trial t's audio as it is now (None when there is none yet: a synth song not made)."""
    try:
        return provenance.file_hash(dataset.find_audio(t["song"],
                                                       layout.Paths(t["song"], t["data_dir"], t["output_dir"])))
    except (UserError, OSError):
        return None


def still_valid(saved, t, sources, *, training: config.Training = None, divergence: config.Divergence = None):
    """Whether a saved trial result may stand for trial t: finished, with the same training
    settings (`same_settings`, with `training`'s defaults), song, audio (sha256) and divergence
    settings (`divergence`'s; default `config.Divergence()`). sources caches the audio hashes."""
    made = saved.get("made_from")
    if saved.get("status") != "ok" or saved.get("source") != t["song"] or not isinstance(made, dict) \
            or not same_settings(saved.get("settings"), t["settings"], training):
        return False
    if t["song"] not in sources:
        sources[t["song"]] = current_source_sha256(t)
    wanted = saved_rule(config.Divergence() if divergence is None else divergence)
    return made.get("source_sha256") == sources[t["song"]] and made.get("divergence") == wanted


def same_settings(saved, wanted, training: config.Training = None):
    """Whether a saved trial's training settings are `wanted` (both {SETTING: value}, or None for PCA);
    a setting the saved trial lacks (added to the project since) counts as its default in
    `training` (default: `config.Training`'s own)."""
    if saved is None or wanted is None:
        return saved is None and wanted is None
    defaults = config.Training() if training is None else training
    return all(saved.get(k, getattr(defaults, k.lower(), None)) == v for k, v in wanted.items())


def load_trials(exp_dir, trials, *, training: config.Training = None, divergence: config.Divergence = None):
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
            if isinstance(r, dict) and still_valid(r, t, sources, training=training, divergence=divergence):
                done[key] = r
    return done


# ---------------------------------------------------------------- running the trials

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
            cpu = f", {r['cpu_seconds']:.0f} s of CPU" if "cpu_seconds" in r else ""
            what = f"ok in {r['seconds']:.0f} s{cpu}" + (f" (computed: {', '.join(r['computed'])})"
                                                         if r["computed"] else " (every stage reused)")
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


def run_on_ray(todo, cfg: config.Experiment, on_result, *, training, divergence):
    """Run the trials as Ray tasks (`run_trial`, each after its song's `prepare_song` task);
    call on_result(result) as each one ends. Ray schedules them on cfg.cpus_per_trial CPUs each
    and runs a trial whose worker died again (RETRIES). Ray keeps its worker processes from task
    to task (a CPU task's max_calls is unlimited), so a worker imports TensorFlow once, not once
    per trial."""
    address = cfg.address.strip()
    check_address(address)
    import ray
    if address:
        runtime_env = {"working_dir": str(CODE), "excludes": [".venv", ".git", "data", "outputs", "*.mp4"]}
        kw = {"address": address}
    else:
        runtime_env = {"env_vars": {"PYTHONPATH": str(CODE) + os.pathsep + os.environ.get("PYTHONPATH", "")}}
        kw = {"num_cpus": cfg.num_cpus or local_cores()}
    try:
        ray.init(runtime_env=runtime_env, include_dashboard=False, log_to_driver=cfg.worker_logs,
                 logging_level="ERROR", **kw)
    except Exception as e:  # noqa: BLE001
        raise UserError(f"could not start Ray{' at ' + address if address else ''}: {one_line(e)}") from None
    try:
        cpus = ray.cluster_resources().get("CPU", 0)
        print(f"Ray: {'cluster at ' + address if address else 'local instance'} with {cpus:g} CPUs, "
              f"{cfg.cpus_per_trial} per trial", flush=True)
        prepare = ray.remote(num_cpus=1, max_retries=RETRIES)(prepare_song)
        trial = ray.remote(num_cpus=cfg.cpus_per_trial, max_retries=RETRIES)(run_trial)
        songs, pending = {}, {}
        for t in todo:
            song = (t["song"], t["window"])
            if song not in songs:
                songs[song] = prepare.remote(t["song"], t["window"], t["data_dir"], t["output_dir"],
                                             t["synth_seconds"], t["synth_rate"])
            pending[trial.remote(t, songs[song], training=training, divergence=divergence)] = t
        while pending:
            [ready], _ = ray.wait(list(pending), num_returns=1)
            t = pending.pop(ready)
            try:
                r = ray.get(ready)
            except Exception as e:  # noqa: BLE001 - a worker that died more often than RETRIES, a lost node
                r = trial_result(t) | {"status": "failed", "seconds": 0.0,
                                       "error": f"the Ray task failed: {one_line(e)}"}
            on_result(r)
    finally:
        ray.shutdown()


def run_in_process(todo, on_result, *, training, divergence):
    """One trial at a time in this process (no Ray), each song prepared once."""
    prepared = {}
    for t in todo:
        song = (t["song"], t["window"])
        if song not in prepared:
            prepared[song] = prepare_song(t["song"], t["window"], t["data_dir"], t["output_dir"],
                                          t["synth_seconds"], t["synth_rate"])
        on_result(run_trial(dict(t, threads=0), prepared[song], training=training, divergence=divergence))


def load_runs(exp_dir):
    """The experiment's runs so far (runs.json): [{started, seconds, trials_run, cpus}]."""
    try:
        runs = json.loads((Path(exp_dir) / "runs.json").read_text())
        return runs if isinstance(runs, list) else []
    except (OSError, ValueError):
        return []


def record_run(exp_dir, started, trials_run, cfg: config.Experiment):
    """Add this run of the command (its wall time, the trials it ran, the CPUs) to runs.json; returns all runs."""
    runs = load_runs(exp_dir) + [{"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started)),
                                   "seconds": time.time() - started, "trials_run": trials_run,
                                   "cpus": cfg.num_cpus or local_cores(), "host": socket.gethostname()}]
    store.save_json(Path(exp_dir) / "runs.json", runs)
    return runs


def run_experiment(cfg: config.Experiment, definitions, *, training: config.Training = None,
                   divergence: config.Divergence = None):
    """The whole experiment: grid, trials (skipping finished ones), report. Returns the results in grid order.

    definitions : {variant name: {SETTING: value}} (experiment.py's VARIANT_SETTINGS).
    training : the training stage's settings; what a variant does not set (learning rate, chunks,
        order, ...) is its. divergence : the divergence stage's settings (K, exclusion radius,
        steps, every, fit steps). Each defaults to its class's defaults.
    Raises a one-line UserError when a trial failed (after saving the report).
    """
    training = config.Training() if training is None else training
    divergence = config.Divergence() if divergence is None else divergence
    trials, variants, songs = grid.build_grid(cfg, definitions, training)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", cfg.name):
        raise UserError(f"NAME {cfg.name!r} must be a plain folder name (letters, digits, '-', '_', '.')")
    exp_dir = Path(cfg.output_dir) / "experiments" / cfg.name
    for folder in (exp_dir, cfg.data_dir):      # whatever is in the way is said before any work
        store.check_folder(folder)
    keys = [trial_key(t) for t in trials]
    results = load_trials(exp_dir, trials, training=training, divergence=divergence)
    todo = [t for t, k in zip(trials, keys) if k not in results]
    print(f"experiment {cfg.name}: {len(songs)} songs x {len(variants)} variants x "
          f"{len(split(cfg.seeds))} seeds x {len(split(cfg.windows))} windows x "
          f"{len(split(cfg.latent_dims))} latent sizes = {len(trials)} trials; "
          f"{len(results)} already done, {len(todo)} to run", flush=True)
    started, already = time.time(), len(results)
    try:
        if todo:
            progress = Progress(len(trials), len(results), len(todo))

            def on_result(r):
                save_trial(exp_dir, r)
                results[r["key"]] = r
                progress(r)
            if cfg.use_ray:
                run_on_ray(todo, cfg, on_result, training=training, divergence=divergence)
            else:
                run_in_process(todo, on_result, training=training, divergence=divergence)
    finally:   # an interrupted run's wall time counts too, once it has finished a trial
        if len(results) > already:
            record_run(exp_dir, started, len(results) - already, cfg)
    ordered = [results[k] for k in keys if k in results]
    runs = load_runs(exp_dir)
    features = {layout.song_name(song): song_features(song, cfg.data_dir, cfg.output_dir) for song in songs}
    files = report.save(exp_dir, ordered, variants, cfg, divergence, features, runs)
    print(f"saved {', '.join(str(f) for f in files)}")
    failed = [r for r in ordered if r["status"] != "ok"]
    if cfg.publish and not failed:
        print(f"published {', '.join(str(f) for f in report.publish(exp_dir, cfg.name))}")
    if failed:
        raise UserError(f"{len(failed)} of {len(trials)} trials failed (reasons above and in {files[0]}); "
                        "fix them and run the same command again: finished trials are kept")
    return ordered
