"""Models in the embedding space that predict the displacement v from z (MLP)
or from the last points of the path (LSTM), scored on a held-out 20% of the
path that they never train on: five blocks spread across the song by default
("blocks"), or its last 20% ("end": a song's coda is often unlike the rest).

All of them work on Z scaled per dimension to [0, 1] by the min and max of
the training part (as the original, which scaled by the whole path).
"""
import typing
from dataclasses import dataclass

import numpy as np

import dae  # noqa: F401
from dae import provenance, store
from dae.errors import UserError
from dae.forecast import unit_scale

HOLDOUT = 0.2     # fraction of the path held out
BLOCKS = 5        # "blocks": the held-out part is this many blocks, one at the end of each fifth of the song
SPLITS = ("blocks", "end")
LSTM_HISTORY = 20  # points the latent LSTM reads
STEPS_PER_EXECUTION = 64   # training steps per call into the compiled graph (the same steps, fewer Python round trips)


def held_out_ranges(n_points, holdout=HOLDOUT, scheme="blocks", blocks=BLOCKS, history=1):
    """The held-out parts of a path of `n_points`: [(first, end)] point ranges (end excluded).

    "end": the last `holdout` of the path. "blocks": `blocks` ranges of holdout / blocks of
    the path each, the last of each of `blocks` equal parts, so that every part of the song
    is both trained on and tested; fewer on a short path, so that each block is at least
    twice the samples' `history` (one block: the end).
    """
    if scheme not in SPLITS:
        raise ValueError(f"scheme={scheme!r}; expected one of {', '.join(map(repr, SPLITS))}")
    parts = 1 if scheme == "end" else max(1, min(int(blocks), int(holdout * n_points // (2 * history))))
    edges = [int(round(n_points * k / parts)) for k in range(parts + 1)]
    size = holdout * n_points / parts
    return [(int(round(end - size)), end) for end in edges[1:]]


def split(n_points, history, holdout=HOLDOUT, scheme="blocks", blocks=BLOCKS):
    """Sample indices t (predict v_t = z_{t+1} - z_t) for training and for the held-out test.

    A sample reads points t-history+1 .. t and predicts t+1: training samples
    read and predict training points only, held-out ones held-out points of
    one range only (`held_out_ranges`), so no sample straddles a boundary.
    Returns (train t's, test t's, the held-out ranges [(first, end)]).
    """
    ranges = held_out_ranges(n_points, holdout, scheme, blocks, history)
    test = np.concatenate([np.arange(a + history - 1, b - 1) for a, b in ranges])
    held = np.zeros(n_points, bool)
    for a, b in ranges:
        held[a:b] = True
    t = np.arange(history - 1, n_points - 1)
    window = np.lib.stride_tricks.sliding_window_view(held, history + 1)   # points t-history+1 .. t+1
    train = t[~window[:len(t)].any(axis=1)]
    if len(train) < 8 or len(test) < 2:
        raise UserError(f"a path of {n_points} points is too short to train on {1 - holdout:.0%} and test on "
                        f"{holdout:.0%} ({scheme}) with a history of {history}; use a longer song"
                        + (" or --holdout end" if scheme == "blocks" else ""))
    return train, test, ranges


def windows(Zs, t, history):
    """Inputs for samples t: (len(t), history, d), the points t-history+1 .. t."""
    return Zs[np.asarray(t)[:, None] + np.arange(1 - history, 1)[None, :]]


def build_mlp(latent_dim):
    """z -> v: Dense(12) relu, dropout 0.05, twice, then Dense tanh (the original)."""
    import keras
    from keras import layers
    inp = keras.Input((latent_dim,))
    x = inp
    for _ in range(2):
        x = layers.Dense(12, activation="relu")(x)
        x = layers.Dropout(0.05)(x)
    return keras.Model(inp, layers.Dense(latent_dim, activation="tanh")(x), name="latent_mlp")


def build_lstm(history, latent_dim):
    """The last `history` points -> v: LSTM(32), Dense tanh (the original). The LSTM's steps are
    unrolled (a graph of `history` cells instead of a loop): the same computation, about twice as
    fast to train at batch 4, with weights that differ from the loop's by about 1e-7."""
    import keras
    from keras import layers
    inp = keras.Input((history, latent_dim))
    return keras.Model(inp, layers.Dense(latent_dim, activation="tanh")(layers.LSTM(32, unroll=True)(inp)),
                       name="latent_lstm")


def scores(v_hat, v):
    """MSE and mean cosine similarity between predicted and true displacements."""
    v_hat, v = np.asarray(v_hat, dtype=np.float64), np.asarray(v, dtype=np.float64)
    nh, nt = np.linalg.norm(v_hat, axis=1), np.linalg.norm(v, axis=1)
    cos = np.sum(v_hat * v, axis=1) / np.maximum(nh * nt, 1e-300)
    return {"mse": float(np.mean((v_hat - v) ** 2)), "cosine": float(np.mean(cos))}


def persistence_flag(report):
    """A warning (one line) when held-out scores are worse than persistence's, else "".

    report : the scores of `train` (or a latent model's sidecar): "held_out" and
    "persistence", each {"mse", "cosine"}. Worse: a higher MSE or a lower mean cosine.
    """
    if "held_out" not in report or "persistence" not in report:
        return ""
    h, p = report["held_out"], report["persistence"]
    worse = []
    if h["mse"] > p["mse"]:
        worse.append(f"MSE {h['mse']:.3g} > {p['mse']:.3g}")
    if h["cosine"] < p["cosine"]:
        worse.append(f"mean cosine {h['cosine']:.3f} < {p['cosine']:.3f}")
    if not worse:
        return ""
    blocks = len(report.get("held_out_ranges", ()))
    where = f"{blocks} blocks across the song" if report.get("holdout") == "blocks" and blocks > 1 else \
        f"last {HOLDOUT:.0%}"
    return (f"the latent {report.get('model', 'model')} does worse than persistence (v_t = v_t-1) on the held-out "
            f"{where}: " + ", ".join(worse) + "; its forecasts say less than repeating the last step: "
            "try more --epochs, or trust the KNN forecast for this song")


@dataclass(frozen=True)
class Forecaster:
    """A latent forecaster: a model that reads the last `history` points (scaled to [0, 1]) and
    predicts the next displacement v. `build(latent_dim)` makes it untrained; `inputs(Zs, t)` are the
    inputs of samples t (indices of Zs): whatever shape `build`'s model reads."""
    name: str
    history: int
    build: typing.Callable
    inputs: typing.Callable
    epochs: int   # the original's


# the latent forecasters by name: a new one is a build function, its inputs and one line here
FORECASTERS = {
    "mlp": Forecaster("mlp", 1, build_mlp, lambda Zs, t: Zs[np.asarray(t)], epochs=8),
    "lstm": Forecaster("lstm", LSTM_HISTORY, lambda d: build_lstm(LSTM_HISTORY, d),
                       lambda Zs, t: windows(Zs, t, LSTM_HISTORY), epochs=10),
}


def forecaster(kind):
    """The `Forecaster` called `kind` ('mlp', 'lstm')."""
    if kind not in FORECASTERS:
        raise ValueError(f"kind={kind!r}; expected one of {', '.join(map(repr, FORECASTERS))}")
    return FORECASTERS[kind]


def train(kind, Z, epochs, batch_size=4, seed=0, verbose=0, holdout="blocks"):
    """Train the latent forecaster `kind` (a name in FORECASTERS) on Z (N, d), holding out the
    part `holdout` names (`split`: "blocks" or "end"). verbose : 0 quiet; 1 or 2 the run's
    progress with its time left (`training.RunProgress`: redrawn in place on a terminal with 1,
    a line per epoch with 2).

    Returns (model, report): report holds the scaler (lo, hi: the training points' min and
    max), the split and the held-out scores of the model and of persistence (v_t predicted
    as v_{t-1}).
    """
    import keras
    spec = forecaster(kind)
    t_train, t_test, ranges = split(len(Z), max(spec.history, 2), scheme=holdout)
    trained = np.ones(len(Z), bool)
    for a, b in ranges:
        trained[a:b] = False
    Zs, lo, hi = unit_scale(Z, Z[trained].min(axis=0), Z[trained].max(axis=0))
    V = np.diff(Zs, axis=0)
    keras.utils.set_random_seed(seed)
    model = spec.build(Z.shape[1])
    x_train, x_test = spec.inputs(Zs, t_train), spec.inputs(Zs, t_test)
    model.compile(optimizer="adam", loss="mse", steps_per_execution=STEPS_PER_EXECUTION)
    callbacks = []
    if verbose:
        from dae.training import RunProgress
        callbacks.append(RunProgress(epochs, -(-len(t_train) // batch_size), 0, (), verbose=verbose))
    model.fit(x_train, V[t_train], batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=callbacks)
    v_hat = model.predict(x_test, verbose=0)
    report = {"model": kind, "lo": lo.tolist(), "hi": hi.tolist(), "holdout": holdout,
              "held_out_ranges": [list(r) for r in ranges], "split_index": ranges[0][0], "history": spec.history,
              "n_train": len(t_train), "n_test": len(t_test), "test_first_index": int(t_test[0]),
              "held_out": scores(v_hat, V[t_test]), "persistence": scores(V[t_test - 1], V[t_test])}
    report["worse_than_persistence"] = persistence_flag(report)
    return model, report


def predictor(model, kind, lo, hi):
    """A displacement function for rollouts in *unscaled* coordinates.

    Returns f(path) -> v̂ (d,) that reads the path so far ((n, d), unscaled):
    its forecaster's last `history` points (the MLP its last point, the LSTM its last LSTM_HISTORY).
    """
    lo, hi = np.asarray(lo), np.asarray(hi)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    spec = forecaster(kind)

    def f(path):
        zs = (np.asarray(path) - lo) / span
        x = spec.inputs(zs, [len(zs) - 1])           # one sample: the inputs ending at the last point
        return model.predict_on_batch(x.astype("float32"))[0] * span
    return f


def rollout(f, start, steps):
    """Roll forward from `start` ((h, d) points; the last is the initial condition): (steps + 1, d)."""
    path = [np.asarray(p, dtype=np.float64) for p in start]
    for _ in range(steps):
        path.append(path[-1] + f(np.array(path)))
    return np.array(path[len(start) - 1:])


def save(model, path):
    """Write a trained latent model to `path` (.keras) atomically."""
    with store.atomic_path(path) as tmp:
        model.save(tmp)


def load(meta):
    """The latent model of a checked record (`provenance.check`); a damaged file is a UserError
    naming the stage to rerun (not Keras's "File not found" for a file that exists)."""
    return provenance.load_keras(meta, compile=True)
