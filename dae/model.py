"""The conditioned autoencoder: encoder, decoder, forecaster and the training model.

Shapes: an audio window is (width, height) = (time columns, frequency bins);
the 1-D convolutions slide along time with the frequency bins as channels. A
video window is (frame height, frame width, width) = one frame (or `width`
consecutive frames as channels); the 2-D convolutions slide over the picture.
"""
import math

import dae  # noqa: F401  (quiet TensorFlow before it loads)
import keras
from keras import layers
from keras import ops

from dae.config import LOSS_WEIGHTS, Run
from dae.errors import UserError
from dae.spectrogram import variant_for  # noqa: F401  (the architecture a window length gets)

ENCODE_PIECE = 4           # video: chunk positions encoded per piece, their activations recomputed in the backward pass


def recompute(fn):
    """fn with its activations recomputed in the backward pass instead of kept: the one place where
    a backend's own mechanism is used (`keras.remat`: tf.recompute_grad on TensorFlow, jax.checkpoint
    on JAX, torch.utils.checkpoint on PyTorch)."""
    return keras.remat(fn)


def l2_normalize(x, axis=-1):
    """x / |x| along `axis`, as tf.math.l2_normalize: x * rsqrt(max(sum x², 1e-12)) (the same
    operations, so TensorFlow's values do not move; keras.ops.normalize bounds the norm differently)."""
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), 1e-12))


def _conv(filters, kernel, padding="same", activation="relu", name=None):
    return layers.Conv1D(filters, kernel, padding=padding, activation=activation,
                         kernel_initializer="random_normal", bias_initializer="zeros", name=name)


def build_encoder(width, height, latent_dim, variant="short"):
    """Window (width, height) -> z (latent_dim,).

    Conv1D 32/64/128 (kernel 3, relu), each followed by max-pool 2, flatten,
    Dense(latent_dim, linear). 'long' uses valid padding and an extra 1x1 conv.
    """
    padding = "valid" if variant == "long" else "same"
    length = width
    for _ in range(3):
        length = (length - (2 if padding == "valid" else 0)) // 2
    if length < 1:
        raise UserError(f"a window of {width} columns is too short for the {variant} encoder; "
                        "use a longer WINDOW_SECONDS")
    inp = keras.Input((width, height), name="window")
    x = inp
    for filters in (32, 64, 128):
        x = _conv(filters, 3, padding)(x)
        x = layers.MaxPooling1D(2)(x)
    if variant == "long":
        x = _conv(128, 1, "valid")(x)
    x = layers.Flatten()(x)
    z = layers.Dense(latent_dim, kernel_initializer="random_normal", name="z")(x)
    return keras.Model(inp, z, name="encoder")


def build_frame_encoder(frame_shape, latent_dim, channels=1):
    """A video window (frame height, frame width, channels) -> z (latent_dim,).

    The audio encoder's layers in two dimensions, derived from the frame shape:
    Conv2D 32/64/128 (3x3, relu, same padding), each followed by 2x2 max-pool,
    flatten, Dense(latent_dim, linear).
    """
    h, w = (int(s) for s in frame_shape)
    if min(h, w) < 8:
        raise UserError(f"frames of {h}x{w} pixels are too small for the frame encoder (three 2x2 poolings); "
                        "use a FRAME_SIZE of at least 8x8")
    inp = keras.Input((h, w, channels), name="window")
    x = inp
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu",
                          kernel_initializer="random_normal", bias_initializer="zeros")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    z = layers.Dense(latent_dim, kernel_initializer="random_normal", name="z")(x)
    return keras.Model(inp, z, name="encoder")


def build_frame_decoder(frame_shape, latent_dim, channels=1):
    """z (latent_dim,) -> a video window (frame height, frame width, channels) in (0, 1).

    The audio decoder's plan in two dimensions, derived from the frame shape:
    Dense to (ceil(h / 8), ceil(w / 8), 128), then upsample 2 + Conv2D 64 +
    batch norm, upsample 2 + Conv2D 32 + batch norm, upsample 2, a 1x1 sigmoid
    conv to `channels`, and a crop of the extra rows and columns, so the output
    matches any frame size exactly. (Channels fall as the picture grows, so the
    decoder costs about what the encoder costs.)
    """
    h, w = (int(s) for s in frame_shape)
    sh, sw = math.ceil(h / 8), math.ceil(w / 8)
    inp = keras.Input((latent_dim,), name="z")
    x = layers.Dense(sh * sw * 128, activation="relu", use_bias=False, kernel_initializer="random_normal")(inp)
    x = layers.Reshape((sh, sw, 128))(x)
    for filters in (64, 32):
        x = layers.UpSampling2D(2)(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu",
                          kernel_initializer="random_normal", bias_initializer="zeros")(x)
        x = layers.BatchNormalization()(x)
    x = layers.UpSampling2D(2)(x)
    x = layers.Conv2D(channels, 1, activation="sigmoid", kernel_initializer="random_normal")(x)
    eh, ew = 8 * sh - h, 8 * sw - w
    if eh or ew:
        x = layers.Cropping2D(((eh // 2, eh - eh // 2), (ew // 2, ew - ew // 2)))(x)
    return keras.Model(inp, x, name="decoder")


def build_decoder(width, height, latent_dim, variant="short"):
    """z (latent_dim,) -> window (width, height) with values in (0, 1).

    Dense, reshape to (ceil(width / 8), c), two upsample + conv + batch-norm
    blocks, a last upsample, a 1x1 sigmoid conv to `height` channels, then a
    crop of the 8 * ceil(width / 8) - width extra columns, so the output
    matches any input width exactly.
    """
    start = math.ceil(width / 8)
    channels, convs = (32, (64, 128)) if variant == "long" else (64, (128, 128))
    inp = keras.Input((latent_dim,), name="z")
    x = layers.Dense(start * channels, activation="relu", use_bias=False,
                     kernel_initializer="random_normal")(inp)
    x = layers.Reshape((start, channels))(x)
    for filters in convs:
        x = layers.UpSampling1D(2)(x)
        x = _conv(filters, 3)(x)
        x = layers.BatchNormalization()(x)
    x = layers.UpSampling1D(2)(x)
    x = _conv(height, 1, activation="sigmoid")(x)
    extra = 8 * start - width
    if extra:
        x = layers.Cropping1D((extra // 2, extra - extra // 2))(x)
    return keras.Model(inp, x, name="decoder")


def build_forecaster(history, latent_dim, units=16, unroll=None):
    """The last `history` embeddings (history, latent_dim) -> predicted displacement v̂.

    unroll : the LSTM's steps are laid out in the graph instead of a loop:
    the same computation, about twice as fast on a CPU for this short, narrow
    sequence on TensorFlow (the original used the loop). None: the backend's
    faster choice (`UNROLL`).
    """
    unroll = UNROLL.get(keras.backend.backend(), True) if unroll is None else unroll
    inp = keras.Input((history, latent_dim), name="z_history")
    h = layers.LSTM(units, activation="tanh", dropout=0.1, unroll=unroll)(inp)
    v = layers.Dense(latent_dim, name="v_hat")(h)
    return keras.Model(inp, v, name="forecaster")


# the LSTM's unroll by backend (benchmarks/bench_backends.py: on JAX the loop (lax.scan) ran 3.5x faster
# per step than the unrolled steps and compiled 4x faster; TensorFlow stays unrolled, its reference)
UNROLL = {"tensorflow": True, "jax": False, "torch": True}


def loss_terms(x_t, x_hat, z_hist, z_next, v_hat):
    """The four loss terms, each a scalar averaged over the batch.

    x_t, x_hat : (B, width, height) window and its reconstruction in [0, 1].
    z_hist : (B, l, d) embeddings of the l windows ending at t; z_next : (B, d) at t+1.
    v_hat : (B, d) predicted displacement.
    Returns reconstruction (BCE), forecasting (1 - cos(v̂, v), v = z_{t+1} - z_t),
    off-centre (mean z_t²) and curvature (mean over the sequence of minus the
    cosine between consecutive displacements).
    """
    x_t, x_hat, z_hist, z_next, v_hat = (ops.convert_to_tensor(a) for a in (x_t, x_hat, z_hist, z_next, v_hat))
    z_t = z_hist[:, -1]
    v = z_next - z_t
    size = math.prod(x_t.shape[1:])                     # one window's values (static)
    recon = ops.mean(keras.losses.binary_crossentropy(ops.reshape(x_t, (-1, size)), ops.reshape(x_hat, (-1, size))))
    cos = ops.sum(l2_normalize(v_hat) * l2_normalize(v), -1)
    forecast = ops.mean(1.0 - cos)
    off_centre = ops.mean(ops.square(z_t))
    steps = l2_normalize(z_hist[:, 1:] - z_hist[:, :-1])
    curvature = ops.mean(-ops.sum(steps[:, :-1] * steps[:, 1:], -1))
    return recon, forecast, off_centre, curvature


def roll_forward(forecaster, z_hist, steps, training=False):
    """Roll the forecaster forward `steps` steps on its own predictions.

    z_hist : (B, l, d) embeddings ending at z_t. Each step predicts v̂ from the
    last l positions, appends ẑ = (last position) + v̂ and drops the oldest, as
    a forecast is made at use time. Returns ẑ_{t+1} .. ẑ_{t+steps}: (B, steps, d).
    """
    z_hist = ops.convert_to_tensor(z_hist)
    out = []
    for _ in range(steps):
        z_next = z_hist[:, -1] + forecaster(z_hist, training=training)
        out.append(z_next)
        z_hist = ops.concatenate([z_hist[:, 1:], z_next[:, None]], axis=1)
    return ops.stack(out, axis=1)


def horizon_loss(z_t, z_true, z_pred, decay=1.0, length_weight=1.0):
    """Scale-free forecasting loss over H steps.

    z_t : (B, d) the current embedding; z_true, z_pred : (B, H, d) the true and
    the rolled-out embeddings at t+1 .. t+H. With the k-step displacements
    D_k = z_{t+k} - z_t and D̂_k = ẑ_{t+k} - z_t and weights w_k = decay^(k-1):

        L = sum_k w_k [(1 - cos(D̂_k, D_k)) + length_weight * ln²(|D̂_k| / |D_k|)] / sum_k w_k

    averaged over the batch. Scaling the whole path (and so both displacements)
    by any constant leaves L unchanged, so it cannot be lowered by shrinking
    the path; a collapsed path (D_k = 0) gets cos = 0, the worst but one.
    With H = 1 and length_weight = 0 it is the one-step loss 1 - cos(v̂, v).
    """
    z_t, z_true, z_pred = (ops.convert_to_tensor(a) for a in (z_t, z_true, z_pred))
    true = z_true - z_t[:, None]
    pred = z_pred - z_t[:, None]
    cos = ops.sum(l2_normalize(pred) * l2_normalize(true), -1)   # (B, H)
    log_ratio = ops.log(ops.norm(pred, axis=-1) + 1e-12) - ops.log(ops.norm(true, axis=-1) + 1e-12)
    per_step = (1.0 - cos) + length_weight * ops.square(log_ratio)
    w = ops.power(ops.cast(decay, per_step.dtype), ops.cast(ops.arange(true.shape[1]), per_step.dtype))
    return ops.mean(ops.sum(per_step * w, -1) / ops.sum(w))


class ConditionedAutoencoder(keras.Model):
    """Encoder + decoder + forecaster trained jointly on one song.

    Input to `fit`: batches of chunk start indices (C,). A chunk is B + l + H - 1
    consecutive windows that give B training samples: sample i reads windows
    i .. i+l-1 as history (its current window t = i+l-1) and windows
    i+l .. i+l+H-1 as t+1 .. t+H. Each window of the chunk is encoded once and
    the histories are sliced from those embeddings, instead of re-encoding
    l + 2 windows per sample.

    Loss = beta * reconstruction + alpha * forecasting + gamma * off-centre
    + delta * curvature (the weights named in `dae.config.LOSS_WEIGHTS`, given as
    keywords); one Mean tracker per term. With horizon H = 1 the
    forecasting term is the original's 1 - cos(v̂, v); with H > 1 it is
    `horizon_loss` over the forecaster's own H-step rollout.

    spread > 0: each training batch is (C + spread,): the C chunk starts, then
    `spread` windows drawn from across the trained part, encoded and
    reconstructed with the chunk's current windows in one decoder batch (the
    reconstruction term is the mean over all C*B + spread of them). The windows of
    one chunk are neighbours, nearly alike in a video; these add other places of
    it to every step. Validation batches are chunk starts only.
    """

    TERMS = tuple(LOSS_WEIGHTS)   # reconstruction, forecasting, off_centre, curvature

    def __init__(self, encoder, decoder, forecaster, frames, width, chunk_samples, horizon=1, horizon_decay=1.0,
                 length_weight=1.0, spread=0, **kwargs):
        # each term's weight (alpha=, beta=, ...: `dae.config.LOSS_WEIGHTS`), by default the method's
        weights = {name: float(kwargs.pop(name, Run.__dataclass_fields__[name].default))
                   for name in LOSS_WEIGHTS.values()}
        super().__init__(**kwargs)
        self.encoder, self.decoder, self.forecaster = encoder, decoder, forecaster
        # (n_time, height) scaled spectrogram (float32), or (n_frames, h, w) video frames kept as uint8
        # and scaled to [0, 1] per gathered batch (a long video is never held as float)
        self.video = frames.ndim == 3
        self.frames = ops.convert_to_tensor(frames, dtype="uint8" if self.video else "float32")
        self.width = int(width)
        self.lookback = int(forecaster.input_shape[1])
        self.chunk_samples = int(chunk_samples)
        self.horizon = int(horizon)
        self.spread = int(spread)
        self.horizon_decay, self.length_weight = float(horizon_decay), float(length_weight)
        self.weights_ = weights
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss",) + self.TERMS}
        # video: encode in pieces and recompute their activations in the backward pass, so the memory of a
        # step is one piece's activations, not every encoded frame's (0: encode all at once, keep them)
        self.encode_piece = ENCODE_PIECE if self.video else 0

    @property
    def metrics(self):
        return list(self.trackers.values())

    def weighted_terms(self):
        """(name, weight) of each loss term that counts (weight > 0), in TERMS' order.

        A term of weight 0 is still tracked (history.csv keeps every column)
        but is not part of the loss, so progress shows only these.
        """
        return [(name, self.weights_[LOSS_WEIGHTS[name]]) for name in self.TERMS
                if self.weights_[LOSS_WEIGHTS[name]] > 0]

    def chunk_windows(self, starts, n=None):
        """(C,) start indices -> (C, n, *window) windows, gathered in-graph (n: a chunk's
        B + l + H - 1 unless given).

        window is (width, height) for audio, (h, w, width) for video (frames as
        channels, scaled to [0, 1] here)."""
        n = self.chunk_samples + self.lookback + self.horizon - 1 if n is None else n
        cols = (ops.cast(starts, "int32")[:, None, None] + ops.arange(n, dtype="int32")[None, :, None]
                + ops.arange(self.width, dtype="int32")[None, None, :])
        windows = ops.take(self.frames, cols, axis=0)
        if self.video:
            windows = ops.cast(ops.transpose(windows, (0, 1, 3, 4, 2)), "float32") * (1.0 / 255.0)
        return windows

    def encode_in_pieces(self, windows, training):
        """(C, n, *window) -> (C, n, d): the same values and gradients as one encoder call,
        computed `encode_piece` chunk positions (C x encode_piece windows) at a time, with
        their activations recomputed for the gradient (`recompute`; the encoder has no
        dropout or batch norm, so the recomputation is exact). Peak memory: one piece's
        activations, not every encoded frame's."""
        n, piece, shape = windows.shape[1], self.encode_piece, tuple(windows.shape[2:])
        d = self.encoder.output_shape[-1]
        encode = recompute(lambda w: self.encoder(w, training=training))
        out = []
        for j in range(0, n, piece):
            part = windows[:, j:j + piece]
            k = part.shape[1]
            out.append(ops.reshape(encode(ops.reshape(part, (-1, *shape))), (-1, k, d)))
        return ops.concatenate(out, axis=1)

    def compute_terms(self, starts, training=False, spread=None):
        """The weighted loss and its four terms for chunk `starts` (C,), with the windows starting at
        `spread` (S,) reconstructed too (None: none)."""
        windows = self.chunk_windows(starts)
        n = windows.shape[1]                                                        # B+l+H-1 (static)
        shape = tuple(windows.shape[2:])                                            # one window
        d = self.encoder.output_shape[-1]
        if self.encode_piece:
            z = self.encode_in_pieces(windows, training)
        else:
            flat = ops.reshape(windows, (-1, *shape))
            z = ops.reshape(self.encoder(flat, training=training), (-1, n, d))     # (C, B+l+H-1, d)
        # the reconstruction alone counts (R: every other weight 0): the other terms are still computed and
        # tracked, but no gradient can flow through them, so only the reconstructed windows are encoded
        # with gradient (the same values: tests/test_model.py) and the backward pass skips the other
        # windows and the forecaster, which gives the same gradient for a fraction of the cost
        alone = training and all(self.weights_[LOSS_WEIGHTS[name]] == 0 for name in self.TERMS[1:])
        if alone:
            z = ops.stop_gradient(z)
        b, l, h = self.chunk_samples, self.lookback, self.horizon
        index = ops.arange(b, dtype="int32")[:, None] + ops.arange(l, dtype="int32")[None, :]   # (B, l)
        z_hist = ops.reshape(ops.take(z, index, axis=1), (-1, l, d))               # (C*B, l, d)
        z_next = ops.reshape(z[:, l:l + b], (-1, d))
        x_t = ops.reshape(windows[:, l - 1:l - 1 + b], (-1, *shape))
        z_t = self.encoder(x_t, training=training) if alone else z_hist[:, -1]
        if spread is not None:                                                     # other places, same batch
            x_s = self.chunk_windows(spread, 1)[:, 0]
            x_t = ops.concatenate([x_t, x_s], 0)
            z_t = ops.concatenate([z_t, self.encoder(x_s, training=training)], 0)
        x_hat = self.decoder(z_t, training=training)
        if h == 1:
            v_hat = self.forecaster(z_hist, training=training)
            terms = loss_terms(x_t, x_hat, z_hist, z_next, v_hat)
        else:
            ahead = ops.arange(b, dtype="int32")[:, None] + l + ops.arange(h, dtype="int32")[None, :]   # (B, H)
            z_true = ops.reshape(ops.take(z, ahead, axis=1), (-1, h, d))
            z_pred = roll_forward(self.forecaster, z_hist, h, training=training)
            recon, _, off_centre, curvature = loss_terms(x_t, x_hat, z_hist, z_next, z_pred[:, 0] - z_hist[:, -1])
            forecast = horizon_loss(z_hist[:, -1], z_true, z_pred, self.horizon_decay, self.length_weight)
            terms = (recon, forecast, off_centre, curvature)
        weighted = [self.weights_[LOSS_WEIGHTS[name]] * term for name, term in zip(self.TERMS, terms)]
        total = weighted[0]
        for term in weighted[1:]:           # summed in TERMS' order
            total = total + term
        return total, terms

    # Training: `call` computes the loss and its terms (the model's output), `compute_loss` reports them
    # to the trackers and returns the loss, so Keras's own train_step (and test_step) trains the model
    # on JAX and PyTorch. TensorFlow keeps its step of before (`tensorflow_train_step`), whose numbers
    # are this project's reference.

    def call(self, starts, training=False):
        """The loss and its four terms, (total, (reconstruction, forecasting, off_centre, curvature)).
        A training batch with spread (`self.spread` > 0) is (C + spread,): the chunk starts, then the
        spread windows; any other batch is chunk starts only."""
        spread = None
        if training and self.spread:
            starts, spread = starts[:-self.spread], starts[-self.spread:]
        return self.compute_terms(starts, training=training, spread=spread)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        total, terms = y_pred
        self.trackers["loss"].update_state(total)
        for name, value in zip(self.TERMS, terms):
            self.trackers[name].update_state(value)
        return total

    def train_step(self, *args):
        if keras.backend.backend() == "tensorflow":
            return tensorflow_train_step(self, *args)
        return super().train_step(*args)


def tensorflow_train_step(model, starts):
    """One training step on TensorFlow, as before the model ran on other backends: the loss computed
    straight from `compute_terms` under a GradientTape. Keras's own step (through `call`) computes the
    same loss, but TensorFlow optimises that graph differently and some runs (video) then differ from
    this project's earlier results in the last bits; this step keeps them exactly."""
    import tensorflow as tf
    spread = None
    if model.spread:                                       # (C + spread,): chunk starts, then spread windows
        starts, spread = starts[:-model.spread], starts[-model.spread:]
    with tf.GradientTape() as tape:
        total, terms = model.compute_terms(starts, training=True, spread=spread)
    grads = tape.gradient(total, model.trainable_variables)
    model.optimizer.apply_gradients([(g, v) for g, v in zip(grads, model.trainable_variables) if g is not None])
    model.compute_loss(y_pred=(total, terms))
    return {name: m.result() for name, m in model.trackers.items()}
