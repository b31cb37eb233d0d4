"""What the stage 5-7 scripts share: loading a run's embedding, choosing an
initial condition, saving and drawing a forecast."""
import numpy as np

from dae import embedding, latent, layout, plotting, provenance, store
from dae.errors import UserError
from dae.forecast import KNNField, unit_scale


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
        raise UserError(f"INITIAL_CONDITION={requested} is out of range: choose an index in {first}..{last} "
                        "(or -1 for a seeded choice)")
    return int(requested)


def save_forecast(paths, method, ic, forecast, Z, settings, inputs, flag="", **facts):
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
    title = (f"{paths.song} {paths.run}: {method.upper()} forecast, {len(forecast) - 1} steps from index {ic}"
             + (f"\n{flag}" if flag else ""))
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


def train_latent(paths, kind, epochs, batch_size, seed, settings):
    """Train the latent `kind` model on the run's embedding; save it with its held-out scores."""
    if epochs < 1:
        raise UserError(f"EPOCHS={epochs} would replace {paths.latent_model(kind).name} with an untrained model; "
                        "give --epochs 1 or more")
    if batch_size < 1:
        raise UserError(f"BATCH_SIZE={batch_size} must be at least 1")
    Z, emb = load_path(paths)
    model, report = latent.train(kind, Z, epochs, batch_size, seed, verbose=2)
    target = paths.latent_model(kind)
    with store.group_commit() as group:          # the model and its record as one unit
        latent.save(model, group.stage(target))
        provenance.write_sidecar(group.stage(target), f"latent {kind}", settings, inputs={"embedding": emb},
                                 run=paths.run, epochs=int(epochs), **report)
    return report


def print_report(report):
    """Print the held-out scores beside persistence's, and a warning line when the model does worse."""
    h, p = report["held_out"], report["persistence"]
    print(f"held-out last 20% ({report['n_test']} samples from index {report['test_first_index']}): "
          f"MSE {h['mse']:.3g}, mean cosine {h['cosine']:.3f}; "
          f"persistence (v_t = v_t-1): MSE {p['mse']:.3g}, mean cosine {p['cosine']:.3f}")
    flag = latent.persistence_flag(report)
    if flag:
        print(f"WARNING: {flag}")


def forecast_latent(paths, kind, requested_ic, steps, seed, settings):
    """Roll the trained latent `kind` model forward from an initial condition; save and plot it."""
    chain = provenance.check(paths, f"latent {kind}")
    meta = chain[f"latent {kind}"]
    Z, emb = load_path(paths)
    if emb["sha256"] != chain["embedding"]["sha256"]:   # replaced between the two reads
        raise UserError(f"{paths.embedding} changed while it was read; run this again")
    model = latent.load(meta)
    history = int(meta["history"])
    lo, hi = np.asarray(meta["lo"], dtype=float), np.asarray(meta["hi"], dtype=float)
    if lo.shape != (Z.shape[1],) or hi.shape != (Z.shape[1],) or history != (latent.LSTM_HISTORY if kind == "lstm" else 1):
        raise UserError(f"{layout.sidecar_path(meta['path'])} does not fit the {Z.shape[1]}-D path; "
                        f"rerun {provenance.rerun(meta['kind'])}")
    ic = initial_condition(requested_ic, history - 1, len(Z) - 1, seed, len(Z))
    raw = latent.rollout(latent.predictor(model, kind, lo, hi), Z[ic - history + 1:ic + 1], steps)
    if not np.all(np.isfinite(raw)):
        raise UserError(f"the latent {kind} forecast from index {ic} is not finite; "
                        f"retrain it: {LATENT_HINT.format(kind=kind)}")
    _, path_lo, path_hi = unit_scale(Z)
    forecast, _, _ = unit_scale(raw, path_lo, path_hi)      # the units of every forecast (save_forecast)
    flag = latent.persistence_flag(meta)
    if flag:
        print(f"WARNING: {flag}")
    return ic, save_forecast(paths, kind, ic, forecast, Z, settings,
                             inputs={"embedding": emb, f"latent {kind}": meta}, history=history, flag=flag)


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
    tag = f"k{k}_original" if original_rule else f"k{k}_x{rule['exclusion_radius']}"
    target = paths.divergence(tag)
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
