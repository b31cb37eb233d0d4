"""Stage 2: train the conditioned autoencoder on one song, with checkpoints."""
import csv
import io
import math
import sys
import time

import numpy as np

import dae  # noqa: F401
import keras

from dae import config, layout, provenance, sources, store
from dae.embedding import encode, window_batches
from dae.errors import UserError, refused
from dae.model import ConditionedAutoencoder



def default_epochs(window_seconds, video=False):
    """As the original: 6 epochs for the 0.5 s window, 7 for the 2 s one, 12 for a video (the sources')."""
    if video:
        from dae.video_source import VIDEO_EPOCHS
        return VIDEO_EPOCHS
    from dae.audio_source import default_epochs as audio_epochs
    return audio_epochs(window_seconds)


def check_length(n_time, width, history, sr, horizon=1, hop=1024):
    """Number of training samples; a clip too short for one sample is an error.

    A sample needs `history` windows ending at t and `horizon` windows after it.
    sr : samples per second; hop : samples per column (1024 for a spectrogram, 1 for video frames).
    """
    n_windows = n_time - width + 1
    n_samples = n_windows - history - (horizon - 1)
    if n_samples < 1:
        need = (width + history + horizon - 1) * hop / sr
        have = n_time * hop / sr
        raise UserError(f"the clip is {have:.2f} s long but one training sample needs {need:.2f} s "
                        f"(a {width}-column window, its {history}-window history and {horizon} step(s) ahead); "
                        "use a longer clip or a shorter WINDOW_SECONDS / HISTORY / HORIZON")
    return n_samples


ORDERS = ("original", "tiled")


def shuffle_buffer_order(n, buffer_size, rng):
    """The order in which a shuffle buffer of `buffer_size` emits items 0 .. n-1.

    Same rule as ``tf.data.Dataset.shuffle``: the buffer is filled with the first
    items; each output is a uniformly random buffer slot, refilled with the next
    input item; once the input is exhausted the rest leave in random order.
    A buffer smaller than n keeps the order loosely tied to time (an item
    cannot leave before it has entered).

    n : int, number of items; buffer_size : int >= 1; rng : numpy Generator.
    Returns an int64 array (n,), a permutation of 0 .. n-1.
    """
    if n < 0 or buffer_size < 1:
        raise ValueError(f"need n >= 0 and buffer_size >= 1, got n={n}, buffer_size={buffer_size}")
    buf = list(range(min(buffer_size, n)))
    nxt, out = len(buf), []
    while buf:
        j = int(rng.integers(len(buf)))
        out.append(buf[j])
        if nxt < n:
            buf[j] = nxt
            nxt += 1
        else:
            buf[j] = buf[-1]
            buf.pop()
    return np.asarray(out, dtype=np.int64)


def schedule(n_samples, chunk_samples, chunks_per_batch, epochs, seed, order="original"):
    """Chunk start indices for every step of every epoch: (epochs, steps, chunks_per_batch).

    A chunk is `chunk_samples` consecutive samples; chunk start s is the sample
    whose history begins at window s.

    order="original" feeds the data as the original training does: chunks tile
    the samples (every sample once when chunk_samples = 1), pass once through a
    shuffle buffer of 70% of them (the same order every pass), are cut into
    batches of `chunks_per_batch` (the remainder dropped) and streamed, one
    epoch being (chunks // chunks_per_batch) - 1 steps. With chunk_samples = 1
    and chunks_per_batch = 8 this is the original's stream of batches of 8
    samples drawn from across most of the song.

    order="tiled" (faster schedules with long chunks): each epoch tiles the
    samples with chunks at a random phase and visits them in random order, so
    every sample is seen about once per epoch; epoch e depends only on (seed, e).

    Either way the plan depends only on the arguments, so a resumed run sees
    exactly what it would have seen.
    """
    if order not in ORDERS:
        raise refused("order", f"={order!r} is not one of {', '.join(ORDERS)}")
    n_starts = n_samples - chunk_samples + 1
    if order == "tiled":
        per_epoch = math.ceil(n_samples / chunk_samples) + 1
        steps = math.ceil(per_epoch / chunks_per_batch)
        out = np.empty((epochs, steps * chunks_per_batch), dtype=np.int32)
        for e in range(epochs):
            rng = np.random.default_rng([seed, e])
            phase = rng.integers(chunk_samples)
            tiles = np.clip(chunk_samples * np.arange(per_epoch) - phase, 0, n_starts - 1)
            fill = rng.integers(0, n_starts, steps * chunks_per_batch - per_epoch)
            out[e] = rng.permutation(np.concatenate([tiles, fill]))
        return out.reshape(epochs, steps, chunks_per_batch)
    starts = np.minimum(np.arange(0, n_samples, chunk_samples), n_starts - 1)
    rng = np.random.default_rng([seed, 0])
    stream = starts[shuffle_buffer_order(len(starts), max(1, int(0.7 * len(starts))), rng)]
    per_pass = max(1, len(stream) // chunks_per_batch)
    stream = np.resize(stream, per_pass * chunks_per_batch).reshape(per_pass, chunks_per_batch)
    steps = max(1, per_pass - 1)
    batches = np.arange(epochs * steps) % per_pass
    return stream[batches].reshape(epochs, steps, chunks_per_batch).astype(np.int32)


def spread_draws(epochs, steps, count, n_windows, seed):
    """Window starts drawn uniformly from 0 .. n_windows - 1 for each step: (epochs, steps, count).

    The windows a step reconstructs beside its chunks (`ConditionedAutoencoder`'s
    spread). Epoch e depends only on (seed, e), as the schedule, so a resumed run
    draws exactly what it would have drawn.
    """
    out = np.empty((epochs, steps, count), dtype=np.int32)
    for e in range(epochs):
        out[e] = np.random.default_rng([seed, e, 1]).integers(0, n_windows, (steps, count))
    return out


def plan(n_samples, chunk_samples, chunks_per_batch, epochs, seed, order="original", spread=0, n_windows=0):
    """Every training step's input: (epochs, steps, chunks_per_batch + spread) int32, the chunk starts
    of `schedule` followed by `spread` windows of `spread_draws` from the first n_windows (the trained part)."""
    starts = schedule(n_samples, chunk_samples, chunks_per_batch, epochs, seed, order)
    if spread <= 0:
        return starts
    return np.concatenate([starts, spread_draws(epochs, starts.shape[1], spread, n_windows, seed)], axis=-1)


def build(frames, *, width, latent_dim, history, window_seconds, chunk_samples, learning_rate,
          steps_per_execution=1, horizon=1, horizon_decay=1.0, length_weight=1.0, spread=0, source=None,
          **weights):
    """The compiled training model for a scaled spectrogram `frames` (n_time, height), or a video's
    frames (n, h, w): `source` (a `dae.sources.Source`) builds its encoder, decoder and forecaster
    (None: the one whose frames these are). weights : each loss term's weight by its setting's
    name (alpha=, beta=, gamma=, delta=: `dae.config.LOSS_WEIGHTS`); one not given is the method's.

    steps_per_execution : training steps run per call into the graph (fewer
    Python round trips; the steps and their order are unchanged). PyTorch runs
    one step per call (Keras's torch trainer takes no more).
    """
    source = sources.get("video" if frames.ndim == 3 else "audio") if source is None else source
    unknown = sorted(set(weights) - set(config.LOSS_WEIGHTS.values()))
    if unknown:
        raise TypeError(f"build() got unexpected keyword arguments {unknown} (the loss weights are "
                        f"{', '.join(config.LOSS_WEIGHTS.values())})")
    encoder, decoder, forecaster = source.build_models(frames, width, latent_dim, history, window_seconds)
    model = ConditionedAutoencoder(
        encoder, decoder, forecaster, frames, width, chunk_samples, horizon=horizon, horizon_decay=horizon_decay,
        length_weight=length_weight, spread=spread, **weights)
    if keras.backend.backend() == "torch":
        steps_per_execution = 1
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  steps_per_execution=steps_per_execution)
    model(np.zeros((1,), np.int32))  # build the weights
    model.optimizer.build(model.trainable_variables)
    return model


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: one atomic file with every model variable (weights,
    batch-norm statistics, dropout seed state), the optimizer state, the epoch
    count and history; and the history as CSV.

    An epoch whose loss is not finite is not saved: training stops and the
    last good checkpoint stays on disk (`self.failed` says where it broke).
    """

    def __init__(self, paths, rows, tag):
        super().__init__()
        self.paths, self.rows, self.tag = paths, rows, tag
        self.t0 = time.time()
        self.failed = None

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.time()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
               "seconds": time.time() - self.t0}
        bad = [k for k, v in row.items() if not math.isfinite(v)]
        if bad:
            self.failed = (epoch + 1, bad)
            self.model.stop_training = True
            return
        self.rows.append(row)
        with store.group_commit() as group:   # as one unit: a kill leaves both of one epoch, never one ahead
            save_checkpoint(group.stage(self.paths.checkpoint_state), self.model, epoch + 1, self.rows, self.tag)
            store.save_text(group.stage(self.paths.history), history_csv(self.rows))


class RunProgress(keras.callbacks.Callback):
    """The whole run's progress on one line: epoch e/E, step s/S, the share of
    the run done, the time so far and the time left for the run, and the loss
    with the terms that count (weight > 0; see `loss_line`).

    verbose 1 redraws the line in place on a terminal (at most `every` seconds
    apart) and keeps it at the end of each epoch; verbose 2, or output that is
    not a terminal, prints one line per epoch. The rate behind the ETA leaves
    out the first call into the graph (it includes tracing): until a later call
    has run, the time left is shown as '?'. `done` epochs of a resumed run
    count as done. The held-out terms of a validation split (Keras's `val_*`),
    when there is one, follow the loss at an epoch's end. `clock` gives the
    time in seconds.
    """

    def __init__(self, epochs, steps, done, terms, verbose=1, stream=None, every=0.2, clock=time.time):
        super().__init__()
        self.epochs, self.steps, self.done, self.terms = epochs, steps, done, terms
        self.stream, self.clock = stream or sys.stdout, clock
        self.live = verbose == 1 and getattr(self.stream, "isatty", lambda: False)()
        self.every = every
        self.start = self.first = None   # time the fit started, and (time, steps) after its first call
        self.epoch, self.drawn, self.shown = done, 0.0, 0

    def on_train_begin(self, logs=None):
        self.start = self.clock()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        if self.first is None:
            self.first = (now, self._steps_run(batch + 1))
        if self.live and now - self.drawn >= self.every:
            self.drawn = now
            self._show(batch + 1, logs, end="\r")

    def on_epoch_end(self, epoch, logs=None):
        self._show(self.steps, logs, end="\n")

    def _steps_run(self, step):
        """Steps run in this fit so far (a resumed run's earlier epochs excluded)."""
        return (self.epoch - self.done) * self.steps + step

    def _show(self, step, logs, end):
        now, run = self.clock(), self._steps_run(step)
        left = (self.epochs - self.done) * self.steps - run
        t0, s0 = self.first
        eta = (now - t0) / (run - s0) * left if run > s0 else math.nan
        share = (self.done * self.steps + run) / (self.epochs * self.steps)
        line = (f"epoch {self.epoch + 1}/{self.epochs}  step {step}/{self.steps}  run {100 * share:3.0f}%  "
                f"{hms(now - self.start)} elapsed, {hms(eta)} left  {loss_line(logs or {}, self.terms)}")
        held_out = {k[4:]: v for k, v in (logs or {}).items() if k.startswith("val_")}
        if held_out:                                   # at an epoch's end, when there is a validation split
            line += f"  | validation {loss_line(held_out, self.terms)}"
        print(line.ljust(self.shown), end=end, file=self.stream, flush=True)   # cover a longer line drawn before
        self.shown = len(line) if end == "\r" else 0


def hms(seconds):
    """h:mm:ss or m:ss; '?' when not known yet."""
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def loss_line(logs, terms):
    """'loss L = reconstruction R + 0.001 x forecasting F': the loss and the terms that make it.

    terms : (name, weight) of the terms with weight > 0 (`weighted_terms`);
    a term of weight 0 is not part of the loss and is not shown.
    """
    parts = [(f"{w:g} x " if w != 1 else "") + f"{name} {float(logs[name]):.5f}" for name, w in terms if name in logs]
    loss = f"loss {float(logs['loss']):.5f}" if "loss" in logs else "loss ?"
    return loss + (" = " + " + ".join(parts) if parts else "")


def history_csv(rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def save_checkpoint(target, model, epoch, rows, tag):
    """Every variable of the model (seed generators included) and of the optimizer, into `target` (.npz)."""
    arrays = {f"w{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.variables)}
    arrays.update({f"o{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.optimizer.variables)})
    store.save_npz(target, epoch=epoch, tag=tag,
                   history=np.array([list(r.values()) for r in rows]),
                   history_names=np.array(list(rows[0])), **arrays)


def load_checkpoint(paths, model, tag):
    """Restore every model and optimizer variable; returns (epochs done, history rows) or (0, [])."""
    if not paths.checkpoint_state.exists():
        return 0, []
    try:
        with np.load(paths.checkpoint_state, allow_pickle=False) as d:
            if str(d["tag"]) != tag:
                print(f"checkpoint in {paths.run_dir} is from other data or settings; starting over")
                return 0, []
            for prefix, variables in (("w", model.variables), ("o", model.optimizer.variables)):
                for i, v in enumerate(variables):
                    v.assign(d[f"{prefix}{i}"])
            names = [str(n) for n in d["history_names"]]
            rows = [dict(zip(names, [int(r[0])] + [float(x) for x in r[1:]])) for r in d["history"]]
            return int(d["epoch"]), rows
    except (OSError, ValueError, KeyError, EOFError) as e:  # damaged, truncated or foreign
        print(f"checkpoint {paths.checkpoint_state} is unreadable ({type(e).__name__}); starting over")
        return 0, []


def model_record(settings, spectrogram, scale, alpha):
    """What a trained model's sidecars record besides the model itself.

    settings : dict, the training script's settings; spectrogram : the checked
    spectrogram record it was trained on (`dataset.load`'s meta), or a video's
    checked frames record (`frames.load`); scale : (min, max) used to scale it
    to [0, 1]; alpha : the forecasting weight.
    """
    lo, hi = scale
    kind = spectrogram["kind"]
    facts = dict(settings=settings, inputs={kind: spectrogram},
                 architecture=layout.architecture_tag(alpha), source_sha256=spectrogram.get("source_sha256"),
                 scale_min=float(lo), scale_max=float(hi))
    facts[f"{kind}_sha256"] = spectrogram["sha256"]
    return facts | sources.of_chain({kind: spectrogram}).model_facts(spectrogram)


def save_models(paths, model, rows=(), record=None):
    """Commit the encoder, decoder and forecaster with their sidecars as one unit.

    They are written into a temporary folder and published by one atomic
    symlink swap (`store.commit_model`): ``<run>/model -> model-<id>/``.
    Each sidecar records the settings, the spectrogram the model was trained on
    (`record`, from `model_record`), the epochs, the save's id and the sha256 of
    all three parts. Returns the committed folder.
    """
    record = dict(record or {})
    settings, inputs = record.pop("settings", {}), record.pop("inputs", {})
    rows = list(rows)
    shape = [int(s) for s in model.encoder.input_shape[1:]]
    window = dict(width=shape[0], height=shape[1]) if len(shape) == 2 else \
        dict(width=shape[2], height=shape[0], input_shape=shape)      # video: (h, w, frames per window)
    facts = dict(run=paths.run, latent_dim=int(model.encoder.output_shape[-1]), **window,
                 epochs=len(rows), final=rows[-1] if rows else {}) | record

    def write(folder, model_id):
        for part in provenance.MODEL_PARTS:
            getattr(model, part).save(folder / f"{part}.keras")
        unit = {part: provenance.file_hash(folder / f"{part}.keras") for part in provenance.MODEL_PARTS}
        for part in provenance.MODEL_PARTS:
            provenance.write_sidecar(folder / f"{part}.keras", part, settings, inputs=inputs,
                                     model_id=model_id, unit=unit, **facts)
    return store.commit_model(paths, write)


def load_models(paths):
    """The run's committed model, checked as one unit with the chain it was trained on.

    Returns (chain, encoder, decoder, forecaster); chain["encoder"] is the run's record.
    """
    from dae.embedding import load_run
    chain, encoder = load_run(paths)
    return (chain, encoder, *(provenance.load_keras(chain[part]) for part in ("decoder", "forecaster")))


def train(paths, frames, width, sample_rate, source_sha256, *, latent_dim, history, window_seconds,
          epochs, chunk_samples, chunks_per_batch, learning_rate, seed, order="original", horizon=1,
          horizon_decay=1.0, length_weight=1.0, resume=True, verbose=1, record=None, validation=0.0, hop=1024,
          spread=0, source=None, **weights):
    """Train (or resume) the run at `paths` on scaled frames (n_time, height), or on a
    video's uint8 frames (n_frames, h, w) (`hop` = 1: one frame per step).

    weights : each loss term's weight by its setting's name (alpha=, beta=,
    gamma=, delta=: `dae.config.LOSS_WEIGHTS`; the stage's config has checked them).

    validation : the fraction of the frames at the end held out (never trained
    on, nor seen by the batch-norm statistics); their loss terms are reported
    each epoch as val_* (history.csv). 0 trains on everything (audio, as the original).
    spread : windows drawn from across the trained part and reconstructed with
    each step's chunks (`ConditionedAutoencoder`); 0 for none (audio, as the original).

    Saves a checkpoint and history.csv after every epoch and the three models at
    the end. A run resumed from any epoch's checkpoint ends bit-identical to an
    uninterrupted one (same plan, every variable and RNG state restored).
    Returns (model, history rows); model is None when the run had already
    finished `epochs` epochs and `resume` is on. A loss that is not finite
    stops training with a UserError and keeps the last good checkpoint.
    """
    checked = config.check(config.Training, least={"epochs": 1},   # 0 epochs is resolved before here
                           latent_dim=latent_dim, history=history, epochs=epochs, chunk_samples=chunk_samples,
                           chunks_per_batch=chunks_per_batch, video_spread_frames=spread,
                           learning_rate=learning_rate, horizon=horizon, horizon_decay=horizon_decay,
                           length_weight=length_weight, validation=validation)
    learning_rate = checked["learning_rate"]             # Keras refuses an int (a library caller's 1)
    split = int(round(frames.shape[0] * (1 - validation)))
    n_samples = check_length(split, width, history, sample_rate, horizon, hop)
    chunk_samples = max(1, min(chunk_samples, n_samples))
    held_out = validation_starts(frames.shape[0], split, width, history, horizon, chunk_samples, sample_rate,
                                 hop) if validation > 0 else None
    steps = plan(n_samples, chunk_samples, chunks_per_batch, epochs, seed, order, spread, split - width + 1)
    keras.utils.set_random_seed(seed)
    per_call = max(d for d in range(1, 17) if steps.shape[1] % d == 0)   # whole epochs, so exactly the plan
    model = build(frames, width=width, latent_dim=latent_dim, history=history, window_seconds=window_seconds,
                  chunk_samples=chunk_samples, learning_rate=learning_rate, steps_per_execution=per_call,
                  horizon=horizon, horizon_decay=horizon_decay, length_weight=length_weight, spread=spread,
                  source=source, **weights)
    tag = (f"{paths.run}|{source_sha256}|{order}|{chunk_samples}x{chunks_per_batch}|lr{learning_rate:g}"
           + (f"|h{horizon}|hd{horizon_decay:g}|lw{length_weight:g}" if horizon > 1 else "")
           + (f"|spread{spread}" if spread > 0 else "")
           + (f"|val{validation:g}" if validation > 0 else ""))
    done, rows = load_checkpoint(paths, model, tag) if resume else (0, [])
    if done >= epochs and paths.encoder.exists():
        if committed(paths):
            print(f"{paths.run_dir} already has {done} epochs (asked {epochs}); "
                  "pass --epochs N for more or --resume false to start over")
            return None, rows
        print(f"{paths.run_dir} has all {done} epochs but its saved model does not check (an older version's "
              "record, or damaged); saving it again from the checkpoint")
    if 0 < done < epochs:
        print(f"resuming {paths.run} after epoch {done} of {epochs}")
    if done < epochs:
        # the remaining epochs' steps as one array, each step's batch its row of the plan (a step's inputs are
        # one row, so the batch size is a row's length); the iterator runs on across epochs, as the plan does
        data = steps[done:].reshape(-1)
        checkpoint = EpochCheckpoint(paths, rows, tag)
        progress = [RunProgress(epochs, steps.shape[1], done, model.weighted_terms(), verbose)] if verbose else []
        model.fit(data, batch_size=steps.shape[-1], epochs=epochs, initial_epoch=done,
                  steps_per_epoch=steps.shape[1], shuffle=False, callbacks=[checkpoint, *progress], verbose=0,
                  validation_data=held_out, validation_batch_size=chunks_per_batch)
        if checkpoint.failed:
            epoch, bad = checkpoint.failed
            kept = f"the checkpoint after epoch {len(rows)} is kept" if rows else "nothing was saved"
            raise UserError(f"training diverged in epoch {epoch} ({', '.join(bad)} not finite); {kept}; "
                            "lower LEARNING_RATE or the loss weights and run again")
    recalibrate_batch_norm(model.decoder, encode(model.encoder, frames[:split], width))
    save_models(paths, model, rows, record)  # record: what the sidecars say (see model_record)
    return model, rows


def committed(paths):
    """Whether the run's committed model checks in full (`provenance.check`) against its chain."""
    try:
        provenance.check(paths, "encoder")
    except UserError:
        return False
    return True


def validation_starts(n_frames, split, width, history, horizon, chunk_samples, sample_rate, hop):
    """Chunk starts covering every sample that lies wholly in frames split .. n_frames - 1, once each
    (the last chunk may overlap the one before it). Too few held-out frames for one sample is an error."""
    n_val = n_frames - split - width + 1 - history - (horizon - 1)
    if n_val < 1:
        need = (width + history + horizon - 1) * hop / sample_rate
        raise UserError(f"the held-out end ({(n_frames - split) * hop / sample_rate:.2f} s) is shorter than one "
                        f"sample ({need:.2f} s); use a longer video, a larger VALIDATION or a shorter HISTORY, "
                        "or VALIDATION=0")
    c = chunk_samples
    if n_val < c:
        raise UserError(f"the held-out end has {n_val} samples, fewer than one chunk of CHUNK_SAMPLES={c}; "
                        "use a smaller CHUNK_SAMPLES or a larger VALIDATION")
    return (split + np.minimum(np.arange(0, n_val, c), n_val - c)).astype(np.int32)


def recalibrate_batch_norm(decoder, z):
    """Set each batch-norm layer's moving mean and variance to the exact
    statistics of its input over every embedded window z (N, d).

    After a few hundred steps the running averages still remember their
    initial values; this one inference pass removes that bias.
    """
    for layer in decoder.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            x = keras.Model(decoder.input, layer.input).predict(z, verbose=0)
            axes = tuple(range(x.ndim - 1))
            layer.moving_mean.assign(x.mean(axis=axes))
            layer.moving_variance.assign(x.var(axis=axes))


def reconstruction_bce(encoder, decoder, frames, width, batch_size=1024):
    """Mean binary cross-entropy of reconstructing every window (inference mode).

    A fair, batching-independent measure for comparing trained models.
    """
    total, count = 0.0, 0
    for x in window_batches(frames, width, batch_size):
        x_hat = decoder.predict_on_batch(encoder.predict_on_batch(x))
        bce = keras.losses.binary_crossentropy(x.reshape(len(x), -1), x_hat.reshape(len(x), -1))
        total += float(np.sum(bce))
        count += len(x)
    return total / count
