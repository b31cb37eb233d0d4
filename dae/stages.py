"""The stages as typed functions: each takes its frozen config (`dae.config`) and nothing else.

    stages.save_dataset(config.Spectrogram(song="mysong"))
    stages.train_model(config.Training(song="mysong", alpha=0.0, epochs=2))

The scripts (save_dataset.py, train_model.py, ...) build the config from their
constants and the command line and call one of these; pipeline.py and the
experiment call them in one process. A stage reads nothing but its config and
what earlier stages saved (checked with its chain), so two calls with
different settings in one process are two independent runs. A stage whose
outputs are up to date (`provenance.up_to_date`: made by this code from the
inputs there now, with the same settings) keeps them and says so in one line
(`skipped`), so a rerun with nothing changed costs seconds. Below them: what
stages 5-7 share (loading a run's embedding, choosing an initial condition,
saving and drawing a forecast).
"""
import numpy as np

from dae import config, embedding, latent, layout, plotting, provenance, sections, sources, store
from dae.clock import clock, parse_clock
from dae.errors import UserError, refused
from dae.forecast import KNNField, unit_scale


# ---------------------------------------------------------------- stages 1-4

def skipped(script, what):
    """Say, in one line, that a stage kept its up-to-date outputs."""
    print(f"{script}: {what} up to date (same inputs, settings and code), skipped", flush=True)


def current(paths, kind, settings, *files, need_audio=False):
    """Whether every one of `files` (the `kind` artifact, or its pictures: (kind, path) pairs) is
    up to date for `settings` ({USER_NAME: value}; `provenance.up_to_date`)."""
    return all(provenance.up_to_date(paths, k, settings, path=f, need_audio=need_audio) is not None
               for k, f in (files or ((kind, None),)))


def save_dataset(cfg: config.Spectrogram):
    """Stage 1: read the song (or the video's frames) named by cfg.song and save its arrays. Returns its Paths."""
    paths = layout.song_paths(cfg)
    source = sources.get(cfg.source)
    with store.writing(paths, "save_dataset.py"):
        if source.saved(paths, cfg):
            skipped("save_dataset.py", source.record_path(paths).name)
            return paths
        source.save(paths, cfg)
    return paths


def train_model(cfg: config.Training):
    """Stage 2: train the run's conditioned autoencoder (resuming a killed run when cfg.resume).

    Returns (paths, the training model or None when every epoch was already done, history rows).
    """
    paths = layout.run_paths(cfg)
    source = sources.get(cfg.source)
    with store.writing(paths, "train_model.py"):
        data = source.training_data(paths, cfg)   # checked against its record and its audio
        epochs = cfg.epochs or data.epochs
        if current(paths, "encoder", cfg.settings() | {"EPOCHS": epochs}):
            skipped("train_model.py", f"{paths.run}'s {epochs}-epoch model")
            return paths, None, []
        print(f"training {paths.run} on {paths.song}: {data.what}, {epochs} epochs")
        from dae import training  # TensorFlow loads only for the stages that need it
        model, rows = training.train(
            paths, data.frames, data.width, data.rate, data.record["source_sha256"], latent_dim=cfg.latent_dim,
            history=cfg.history, window_seconds=cfg.window_seconds, epochs=epochs, chunk_samples=data.chunk_samples,
            chunks_per_batch=data.chunks_per_batch, learning_rate=cfg.learning_rate, seed=cfg.seed,
            order=data.order, horizon=cfg.horizon, horizon_decay=cfg.horizon_decay,
            length_weight=cfg.length_weight, resume=cfg.resume, verbose=cfg.verbose, validation=data.validation,
            hop=data.hop, spread=data.spread, source=source,
            **{weight: getattr(cfg, weight) for weight in config.LOSS_WEIGHTS.values()},
            record=training.model_record(cfg.settings() | {"EPOCHS": epochs}, data.record, data.scale, cfg.alpha))
    if model is None:  # nothing to train: the committed model must still be the one for this spectrogram
        try:
            provenance.check(paths, "encoder")
        except UserError as e:
            raise UserError(f"{paths.run} has all {epochs} epochs but its saved model is unusable ({e}); "
                            "start over with --resume false") from None
        return paths, None, rows
    print(f"saved {paths.model_dir} -> {paths.model_dir.resolve().name}/{{encoder,decoder,forecaster}}.keras "
          f"and {paths.history.name}")
    last = rows[-1]
    print(f"final (epoch {last['epoch']}, {last['seconds']:.1f} s): {training.loss_line(last, model.weighted_terms())}")
    return paths, model, rows


def embed_audio(cfg: config.Embedding):
    """Stage 3: embed every window of the run's song (every frame of a video) with its trained encoder;
    with cfg.plot, draw the path (`draw_embedding`). Returns (paths, the files written)."""
    if cfg.sections.strip():
        plotting.section_bounds(float("inf"), cfg.section_seconds, cfg.sections)   # checked at the door
    paths = layout.run_paths(cfg)
    with store.writing(paths, "embed_audio.py"):
        if cfg.plot:
            store.check_folder(paths.output_dir)         # whatever is in its way is said before the work
        if current(paths, "embedding", None) and (not cfg.plot or pictures_current(paths, cfg)):
            skipped("embed_audio.py", f"{paths.run}'s embedding" + (" and its pictures" if cfg.plot else ""))
            return paths, []
        Z, start, center, end, chain = embedding.embed_song(paths)
        embedding.save(paths, Z, start, center, end, chain)
        print(f"embedded {len(Z)} windows of {paths.song} into {Z.shape[1]}-D: saved {paths.embedding}")
        written = [paths.embedding]
        if cfg.plot:
            drawn = draw_embedding(paths, cfg)
            print("saved " + ", ".join(str(p) if i == 0 else p.name for i, p in enumerate(drawn)))
            written += drawn
    return paths, written


def pictures_current(paths, cfg: config.Embedding):
    """Whether the trajectory pictures are up to date for the saved embedding and `cfg`, the sections
    picture there exactly when these settings draw one."""
    drawn = section_edges(embedding.load(paths), cfg) is not None
    pictures = [paths.trajectory_png, paths.trajectory_html] + ([paths.trajectory_sections_png] if drawn else [])
    return (drawn or not paths.trajectory_sections_png.exists()) and current(
        paths, None, cfg.settings(), *(("trajectory plot", p) for p in pictures))


def section_edges(emb, cfg: config.Sections, spec=None):
    """The edges (s) of the song's sections for the pictures, (n + 1,) from 0 to the path's end, or
    None for no sections: cfg.sections when given, else those found from the music (`dae.sections`:
    on the spectrogram (F, T, S) `spec`, loaded from the record chain when not given, or on the
    path for a video), else with find_sections off blocks of cfg.section_seconds."""
    end = float(emb["t_end"][-1])
    if cfg.sections.strip():
        return plotting.section_bounds(end, cfg.section_seconds, cfg.sections)
    if cfg.find_sections:
        if spec is None:
            spec = sources.of_chain(emb["chain"]).shown(emb["chain"])[2].get("spec")
        X, t = (sections.spectrogram_features(spec[2]), spec[1]) if spec is not None else (emb["Z"], emb["t_center"])
        cuts = sections.boundaries(X, t)
        cuts = cuts[cuts < end]
        return np.array([0.0, *cuts, end]) if len(cuts) else None
    if cfg.section_seconds > 0 and end > cfg.section_seconds:
        return plotting.section_bounds(end, cfg.section_seconds)
    return None


def draw_embedding(paths, cfg: config.Embedding):
    """Draw the pictures of the run's saved embedding (trajectory.png, trajectory.html and, with
    sections, trajectory_sections.png) and publish them with their sidecars as one unit
    (`store.group_commit`): a crash leaves the previous embedding's set or this one's, and
    a sections picture of a previous embedding does not stay beside them. Returns the files."""
    emb = embedding.load(paths)
    meta, Z, center, end = emb["meta"], emb["Z"], emb["t_center"], emb["t_end"]
    title = f"{paths.song} ({meta['architecture']}, {sources.get(cfg.source).what(paths, cfg)})"
    spec = sources.of_chain(emb["chain"]).shown(emb["chain"])[2].get("spec")
    edges = section_edges(emb, cfg, spec)
    written = [paths.trajectory_png, paths.trajectory_html]
    with store.group_commit() as group:
        plotting.trajectory_png(group.stage(paths.trajectory_png), Z, center, title, spec=spec, sections=edges)
        files = plotting.trajectory_html(group.stage(paths.trajectory_html), Z, center, title,
                                         plotting.library_path(paths))
        if edges is not None:
            plotting.trajectory_sections_png(group.stage(paths.trajectory_sections_png), Z, center, title, edges)
            written.append(paths.trajectory_sections_png)
        else:
            group.drop(paths.trajectory_sections_png)
        for path in written:
            provenance.write_sidecar(group.stage(path), "trajectory plot", cfg.settings(), inputs={"embedding": meta},
                                     run=paths.run, **({"files": files} if path == paths.trajectory_html else {}))
    return written


def play_embedding(cfg: config.Player):
    """Stage 4: the run's player page and/or MP4 (cfg.format). Returns (paths, {"page": facts, "video": (frames,
    record, audio)}) with what was made."""
    from dae import player
    paths = layout.run_paths(cfg)
    made = {}
    with store.writing(paths, "play_embedding.py"):
        store.check_folder(paths.output_dir)             # whatever is in its way is said before the work
        # the embedding, the spectrogram and the audio must be one chain: the audio that is muxed in
        # is the one the spectrogram (shown) was made from, and the path was embedded from that spectrogram
        emb = embedding.load(paths, need_audio=True)
        if cfg.sections.strip():
            plotting.section_bounds(float("inf"), cfg.section_seconds, cfg.sections)   # checked at the door
        wanted = [("player page", player.page_path(paths))] * (cfg.format in ("html", "both")) \
            + [("video", paths.video)] * (cfg.format in ("mp4", "both"))
        if current(paths, None, cfg.settings(), *wanted, need_audio=True):
            skipped("play_embedding.py", " and ".join(
                {"player page": "the player page", "video": "the video"}[k] for k, _ in wanted))
            return paths, made
        step = float(emb["t_center"][1] - emb["t_center"][0]) if len(emb["t_center"]) > 1 else 1.0
        tail_points = int(round(cfg.tail_seconds / step))            # the player page counts its tail in points
        if cfg.format in ("html", "both"):
            facts = made["page"] = player.make(paths, emb, cfg, tail=tail_points, sections=section_edges(emb, cfg))
            size = sum(facts["bytes"].values()) / 1e6
            print(f"saved {facts['page']} (page, audio and {plotting.LIBRARY_NAME}: {size:.1f} MB; "
                  "open it in a browser)")
        if cfg.format in ("mp4", "both"):
            n, record, audio = made["video"] = save_video(paths, emb, cfg)
            print(f"saved {paths.video} ({n} frames at {cfg.fps} fps, {record['duration_s']:.2f} s"
                  f"{' with audio' if audio else ', silent: the video has no sound track'})")
    write_index(paths)
    return paths, made


def write_index(paths):
    """Rewrite the song's index page (`dae.index_page`: every run, its pages, videos and figures, R
    against R-F) after a stage made something it shows, and say where it is."""
    from dae import index_page
    print(f"saved {index_page.write_index(paths)} (every run of {paths.song}, R against R-F)")


def save_video(paths, emb, cfg: config.Player):
    """Render the MP4 of a checked embedding `emb` (`dae.embedding.load(..., need_audio=True)`) and publish
    it with its sidecar as one unit (`store.group_commit`): a crash leaves the previous video beside
    its own record, or this one. Returns (frames, the spectrogram's or the frames' record, the audio
    muxed in or None)."""
    from dae import video
    source = sources.of_chain(emb["chain"])
    record, audio, panel = source.shown(emb["chain"], panel=cfg.spectrogram)
    P, _, note = plotting.project3(emb["Z"], emb["t_center"])     # the pictures' view: a 1-D path against time
    panel = {"spec": (*panel["spec"], record["duration_s"]) if "spec" in panel else None,
             **({"frames": panel["frames"]} if "frames" in panel else {})}
    title = f"{paths.song} · {emb['meta']['architecture']} · {source.what(paths, cfg)}" + (" · PCA" if note else "")
    kwargs = dict(P=P, t_center=emb["t_center"], **panel, width=cfg.width, height=cfg.height,
                  tail_seconds=cfg.tail_seconds, degrees_per_second=cfg.degrees_per_second, title=title,
                  duration=record["duration_s"])
    frames = source.record_kind == "frames"
    with store.group_commit() as group:
        mp4 = group.stage(paths.video)
        n = video.render(mp4, audio, kwargs, record["duration_s"], cfg.fps, cfg.workers or None, cfg.progress)
        provenance.write_sidecar(mp4, "video", cfg.settings(), run=paths.run, frames=n, fps=cfg.fps,
                                 inputs={"embedding": emb["meta"], source.record_kind: record,
                                         "audio": (record["source"], record["source_sha256"])},
                                 duration_s=record["duration_s"], audio=audio,
                                 sync="the point shown at time t is the path at the window centred on t"
                                      + ("; the frame shown is the source frame with the largest time <= t"
                                         if frames else ""))
    return n, record, audio


# ---------------------------------------------------------------- stages 5-7

def train_latent_model(cfg: config.LatentTraining, kind):
    """Stage 5: train the latent `kind` model (a name in `dae.latent.FORECASTERS`) on the run's embedding.
    Returns (paths, its held-out report)."""
    paths = layout.run_paths(cfg)
    with store.writing(paths, f"train_latent_{kind}.py"):
        chain = provenance.up_to_date(paths, f"latent {kind}", cfg.settings())
        if chain is not None:
            skipped(f"train_latent_{kind}.py", paths.latent_model(kind).name)
            return paths, chain[f"latent {kind}"]
        report = train_latent(paths, kind, cfg.epochs, cfg.batch_size, cfg.seed, cfg.settings(), holdout=cfg.holdout)
    print_report(report)
    print(f"saved {paths.latent_model(kind)}")
    return paths, report


def forecast_knn(cfg: config.KnnForecast):
    """Stage 6: roll the path forward with the KNN displacement field. Returns (paths, ic, (data, png, html))."""
    from dae.forecast import rollout
    paths = layout.run_paths(cfg)
    with store.writing(paths, "forecast_knn.py"):
        Z, Zs, meta, field, rule = knn_setup(paths, cfg.k, cfg.exclusion_radius, cfg.original_rule)
        times = embedding.load(paths)["t_center"]
        ic = index_at(times, cfg.at, 0, len(Z) - 2) if cfg.at.strip() else \
            initial_condition(cfg.initial_condition, 0, len(Z) - 2, cfg.seed, len(Z))
        method = "knn-original" if cfg.original_rule else "knn"
        files = paths.forecast(method, ic)
        if forecast_current(paths, method, files, cfg.settings()):
            skipped("forecast_knn.py", files[0].name)
            return paths, ic, files
        forecast = rollout(field, Zs[ic], cfg.n_steps, origin=ic)
        files = save_forecast(paths, method, ic, forecast, Z, cfg.settings(), {"embedding": meta}, t_center=times,
                              **rule)
    print(f"KNN forecast, {span(cfg.n_steps, times, ic, meta)}: saved {files[0]}, {files[1]} and "
          f"{files[2].name}")
    return paths, ic, files


def forecast_current(paths, method, files, settings):
    """Whether a forecast's arrays (data) and pictures (png, html) are up to date for `settings`."""
    data, png, html = files
    return current(paths, None, settings, (f"{method} forecast", data), (f"{method} forecast plot", png),
                   (f"{method} forecast plot", html))


def forecast_latent_model(cfg: config.Forecast, kind):
    """Stage 6: roll the path forward with the trained latent `kind` model. Returns (paths, ic, (data, png, html))."""
    paths = layout.run_paths(cfg)
    with store.writing(paths, f"forecast_{kind}.py"):
        ic, files, made = forecast_latent(paths, kind, cfg.initial_condition, cfg.n_steps, cfg.seed, cfg.settings(),
                                          at=cfg.at)
    if not made:
        skipped(f"forecast_{kind}.py", files[0].name)
    else:
        emb = embedding.load(paths)
        print(f"{kind.upper()} forecast, {span(cfg.n_steps, emb['t_center'], ic, emb['meta'])}: saved {files[0]}, "
              f"{files[1]} and {files[2].name}")
    return paths, ic, files


def divergence(cfg: config.Divergence):
    """Stage 7: KNN forecasts from many initial conditions, their divergence δ and its growth rate
    (`divergence_run`). Returns (paths, the saved file, δ (M, n_steps + 1), origins (M,), facts)."""
    paths = layout.run_paths(cfg)
    with store.writing(paths, "divergence.py"):
        meta = embedding.load(paths)["meta"]
        radius = None if cfg.original_rule else (meta["width"] if cfg.exclusion_radius < 0 else cfg.exclusion_radius)
        chain = provenance.up_to_date(paths, "divergence", cfg.settings(),
                                      path=paths.divergence(divergence_tag(cfg.k, cfg.original_rule, radius)))
        if chain is not None:
            record = chain["divergence"]
            skipped("divergence.py", record["path"].name)
            saved = provenance.arrays(record, ("delta", "origins"))
            return paths, record["path"], saved["delta"], saved["origins"], record
        target, delta, origins, facts = divergence_run(
            paths, cfg.settings(), k=cfg.k, exclusion_radius=cfg.exclusion_radius, original_rule=cfg.original_rule,
            n_steps=cfg.n_steps, every=cfg.every, fit_steps=cfg.fit_steps)
    marks, pps = [int(i) for i in facts["delta_at"]], float(facts["points_per_second"])
    print(f"{paths.run}: {len(origins)} initial conditions, mean δ at steps {'/'.join(map(str, marks))} "
          f"({'/'.join(f'{i / pps:.2f}' for i in marks)} s ahead): "
          + " / ".join(f"{facts['delta_at'][str(i)]:.4f}" for i in marks))
    rate = facts["growth_per_second"]
    print(f"growth of mean ln δ over steps 1-{facts['fit_steps'][1]} (the first {facts['fit_steps'][1] / pps:.2f} s): "
          f"{facts['growth_per_step']:.4f} per step = {rate:.2f} per second"
          + (f" (the forecast's error grows e-fold every {1 / rate:.2f} s of song)" if rate > 0 else
             " (the forecast's error does not grow over those steps)")
          + f"; smoothness: mean turning angle {facts['turning_angle_deg']:.1f} degrees")
    print(f"saved {target}")
    write_index(paths)
    return paths, target, delta, origins, facts


# ---------------------------------------------------------------- what stages 5-7 share


def load_path(paths):
    """The run's embedded path Z (N, d) and its checked embedding record (chain included)."""
    emb = embedding.load(paths)
    return emb["Z"].astype(np.float64), emb["meta"]


def knn_setup(paths, k, exclusion_radius, original_rule):
    """The run's path, scaled per dimension to [0, 1], and its KNN field.

    exclusion_radius < 0 means the window's width in steps. Returns (Z, Zs, meta,
    field, rule facts for the sidecar).
    """
    Z, meta = load_path(paths)
    Zs, _, _ = unit_scale(Z)
    radius = None if original_rule else (meta["width"] if exclusion_radius < 0 else int(exclusion_radius))
    field = KNNField(Zs, k, exclusion=radius, drop_nearest=original_rule)
    facts = {"k": k, "rule": "original" if original_rule else "exclusion", "exclusion_radius": radius}
    return Z, Zs, meta, field, facts


def start_range(n_points):
    """The start indices every forecast method accepts on a path of `n_points`: (first, last).

    first = LSTM_HISTORY - 1 (the latent LSTM reads LSTM_HISTORY points up to
    the start); last = n_points - 2 (the KNN library holds the points that have
    a next point). The default start of KNN, MLP and LSTM is drawn from here.
    """
    return latent.LSTM_HISTORY - 1, int(n_points) - 2


def index_at(t_center, at, first, last):
    """The index of the window centred nearest the song time `at` (text: m:ss or seconds,
    `dae.clock.parse_clock`), which must be one of first..last (the indices the method accepts).

    t_center : (N,) s, each window's centre. Returns an int.
    """
    seconds, t = parse_clock(at), np.asarray(t_center, dtype=float)
    step = float(t[1] - t[0]) if len(t) > 1 else 1.0
    i = int(np.argmin(np.abs(t - seconds)))
    if last < first or not first <= i <= last or not t[0] - step <= seconds <= t[-1] + step:
        within = f"{clock(t[first])}..{clock(t[last])}" if first <= last else "none"
        raise refused("at", f"={at!r} ({clock(max(seconds, 0.0))}) is not a time this forecast can start from: "
                            f"choose one in {within}")
    return i


def span(steps, t_center, ic, meta):
    """'200 steps (4.6 s) from 2:02.5 (index 5266)': a forecast's length and start in song time."""
    return (f"{steps} steps ({steps / float(meta['points_per_second']):.1f} s) from {clock(t_center[ic])} "
            f"(index {ic})")


def initial_condition(requested, first, last, seed, n_points):
    """The index to forecast from.

    requested : int, an index in first..last, or -1 for the default: one index
        drawn with `seed` from `start_range(n_points)`, so KNN, MLP and LSTM
        forecasts of a run start from the same point by default.
    first, last : int, the indices this method accepts when one is requested.
    seed : int in 0 .. 2**32 - 1. n_points : int, the path's length N.
    """
    lo, hi = start_range(n_points)
    if requested < 0:
        if hi < lo:
            raise UserError(f"the path is too short: {n_points} points leave no start index in {lo}..{hi} "
                            "that every method accepts; use a longer song")
        return int(np.random.default_rng(seed).integers(lo, hi + 1))
    if last < first:
        raise UserError(f"the path is too short: no initial condition in {first}..{last}; use a longer song")
    if not first <= requested <= last:
        raise refused("initial_condition", f"={requested} is out of range: choose an index in {first}..{last} "
                        "(or -1 for a seeded choice)")
    return int(requested)


def save_forecast(paths, method, ic, forecast, Z, settings, inputs, flag="", t_center=None, **facts):
    """Save a forecast from index `ic` over the run's path Z (N, d, as embedded), with its pictures.

    forecast : (steps + 1, d) in `plotting.FORECAST_UNITS` (the path scaled per
    dimension to [0, 1] by its min and max, as KNN and divergence), whatever
    the method, so the three methods' files and pictures of a run compare.
    The .npz holds the forecast, the scaled path `Z`, the true continuation
    `truth` (Z[ic:ic + steps + 1], shorter where the song ends), `lo` and `hi`
    (z = lo + scaled * (hi - lo)) and `units`. inputs : the checked records it
    was made from ({"embedding": ..., "latent mlp": ...}). flag : a warning to
    put in the pictures' titles (e.g. worse than persistence). The three files and their
    sidecars are published as one unit (`store.group_commit`): a crash leaves the
    previous forecast's set or this one's. Returns (data, png, html).
    """
    Zs, lo, hi = unit_scale(Z)
    forecast = np.asarray(forecast, dtype=np.float64)
    truth = Zs[ic:ic + len(forecast)]
    data, png, html = paths.forecast(method, ic)
    steps = len(forecast) - 1
    told = span(steps, t_center, ic, inputs["embedding"]) if t_center is not None else \
        f"{steps} steps from index {ic}"
    title = f"{paths.song} {paths.run}: {method.upper()} forecast, {told}" + (f"\n{flag}" if flag else "")
    with store.group_commit() as group:
        arrays = group.stage(data)
        store.save_npz(arrays, forecast=forecast, initial_condition=ic, Z=Zs, truth=truth, lo=lo, hi=hi,
                       units=np.array(plotting.FORECAST_UNITS))
        drawn = plotting.forecast_png(group.stage(png), Zs, forecast, ic, title)
        files = plotting.forecast_html(group.stage(html), Zs, forecast, ic, title.replace("\n", "<br>"),
                                       plotting.library_path(paths))
        clipped = {"steps_outside_the_frame": drawn["steps_outside"],
                   "first_step_outside_the_frame": drawn["first_step_outside"], "reach": drawn["reach"]}
        provenance.write_sidecar(arrays, f"{method} forecast", settings, inputs=inputs, run=paths.run,
                                 initial_condition=ic, steps=len(forecast) - 1, units=plotting.FORECAST_UNITS,
                                 truth_steps=len(truth) - 1, **clipped, **({"flag": flag} if flag else {}), **facts)
        made_from = {f"{method} forecast": (data, provenance.file_hash(arrays))}
        for path in (png, html):
            provenance.write_sidecar(group.stage(path), f"{method} forecast plot", settings, inputs=made_from,
                                     run=paths.run, **({"files": files} if path == html else {}))
    return data, png, html


LATENT_HINT = "run `python train_latent_{kind}.py` with the same settings first"


def train_latent(paths, kind, epochs, batch_size, seed, settings, holdout="blocks"):
    """Train the latent `kind` model on the run's embedding; save it with its held-out scores."""
    if epochs < 1:
        raise refused("epochs", f"={epochs} would replace {paths.latent_model(kind).name} with an untrained model; "
                        "give --epochs 1 or more")
    if batch_size < 1:
        raise refused("batch_size", f"={batch_size} must be at least 1")
    Z, emb = load_path(paths)
    model, report = latent.train(kind, Z, epochs, batch_size, seed, verbose=1, holdout=holdout)
    target = paths.latent_model(kind)
    with store.group_commit() as group:          # the model and its record as one unit
        latent.save(model, group.stage(target))
        provenance.write_sidecar(group.stage(target), f"latent {kind}", settings, inputs={"embedding": emb},
                                 run=paths.run, epochs=int(epochs), **report)
    return report


def print_report(report):
    """Print the held-out scores beside persistence's, and a warning line when the model does worse."""
    h, p = report["held_out"], report["persistence"]
    blocks = len(report.get("held_out_ranges", ()))
    where = (f"{blocks} blocks across the song" if report.get("holdout") == "blocks" and blocks > 1
             else f"last 20%, from index {report['test_first_index']}")
    print(f"held out ({where}; {report['n_test']} samples): "
          f"MSE {h['mse']:.3g}, mean cosine {h['cosine']:.3f}; "
          f"persistence (v_t = v_t-1): MSE {p['mse']:.3g}, mean cosine {p['cosine']:.3f}")
    flag = latent.persistence_flag(report)
    if flag:
        print(f"WARNING: {flag}")


def forecast_latent(paths, kind, requested_ic, steps, seed, settings, at=""):
    """Roll the trained latent `kind` model forward from an initial condition (or from the song time
    `at`, m:ss); save and plot it. Returns (ic, (data, png, html), whether it was made: False when
    they were up to date)."""
    chain = provenance.check(paths, f"latent {kind}")
    meta = chain[f"latent {kind}"]
    Z, emb = load_path(paths)
    if emb["sha256"] != chain["embedding"]["sha256"]:   # replaced between the two reads
        raise UserError(f"{paths.embedding} changed while it was read; run this again")
    history = int(meta["history"])
    lo, hi = np.asarray(meta["lo"], dtype=float), np.asarray(meta["hi"], dtype=float)
    if lo.shape != (Z.shape[1],) or hi.shape != (Z.shape[1],) or history != latent.forecaster(kind).history:
        raise UserError(f"{layout.sidecar_path(meta['path'])} does not fit the {Z.shape[1]}-D path; "
                        f"rerun {provenance.rerun(meta['kind'])}")
    times = embedding.load(paths)["t_center"]
    ic = index_at(times, at, history - 1, len(Z) - 1) if at.strip() else \
        initial_condition(requested_ic, history - 1, len(Z) - 1, seed, len(Z))
    files = paths.forecast(kind, ic)
    if forecast_current(paths, kind, files, settings):
        return ic, files, False
    model = latent.load(meta)
    raw = latent.rollout(latent.predictor(model, kind, lo, hi), Z[ic - history + 1:ic + 1], steps)
    if not np.all(np.isfinite(raw)):
        raise UserError(f"the latent {kind} forecast from index {ic} is not finite; "
                        f"retrain it: {LATENT_HINT.format(kind=kind)}")
    _, path_lo, path_hi = unit_scale(Z)
    forecast, _, _ = unit_scale(raw, path_lo, path_hi)      # the units of every forecast (save_forecast)
    flag = latent.persistence_flag(meta)
    if flag:
        print(f"WARNING: {flag}")
    return ic, save_forecast(paths, kind, ic, forecast, Z, settings, inputs={"embedding": emb, f"latent {kind}": meta},
                             history=history, flag=flag, t_center=times), True


def divergence_tag(k, original_rule, radius):
    """The part of a divergence file's name that says its KNN rule: 'k5_x22' (exclusion radius 22), 'k5_original'."""
    return f"k{k}_original" if original_rule else f"k{k}_x{radius}"


def divergence_run(paths, settings, *, k, exclusion_radius, original_rule, n_steps, every, fit_steps):
    """Stage 7: KNN forecasts of `n_steps` steps from every `every`-th index of the run's
    path, all at once; saves every δ curve with its summary and the path's smoothness.

    δ_i = |ẑ_i - z_{t0+i}| in the path scaled per dimension to [0, 1]. The growth
    rate is the slope of mean ln δ over steps 1 .. min(fit_steps, n_steps).
    Returns (saved file, delta (M, n_steps + 1), origins (M,), the facts recorded
    in its sidecar).
    """
    from dae.forecast import divergence, growth_rate, turning_angle
    Z, Zs, meta, field, rule = knn_setup(paths, k, exclusion_radius, original_rule)
    origins = np.arange(0, len(Zs) - n_steps, every)
    if len(origins) < 2:
        raise UserError(f"the path has {len(Zs)} points, too few for {n_steps}-step forecasts "
                        "from several initial conditions; use a longer song or a smaller --n-steps")
    delta = divergence(Zs, field, origins, n_steps)
    fit = min(fit_steps, n_steps)   # the steps there are
    slope, _ = growth_rate(delta, 1, fit)
    mean, std = delta.mean(axis=0), delta.std(axis=0)
    marks = sorted({1, min(5, n_steps), min(29, n_steps)})
    target = paths.divergence(divergence_tag(k, original_rule, rule["exclusion_radius"]))
    facts = dict(run=paths.run, architecture=meta["architecture"], latent_dim=int(Z.shape[1]),
                 n_initial_conditions=len(origins), **rule, growth_per_step=slope,
                 growth_per_second=slope * meta["points_per_second"], fit_steps=[1, fit],
                 turning_angle_deg=turning_angle(Z), points_per_second=meta["points_per_second"],
                 delta_at={str(i): float(mean[i]) for i in marks})
    with store.group_commit() as group:          # the file and its record as one unit
        store.save_npz(group.stage(target), delta=delta, origins=origins, steps=np.arange(n_steps + 1),
                       mean=mean, std=std, sem=std / np.sqrt(len(origins)), count=np.full(n_steps + 1, len(origins)))
        provenance.write_sidecar(group.stage(target), "divergence", settings, inputs={"embedding": meta}, **facts)
    return target, delta, origins, facts
