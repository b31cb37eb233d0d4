"""Benchmark: video training, chunked against the straightforward reference, and stage 1-2 memory.

Speed, in one run on one synthesised video (the demo video's scene: a circling
disc, a camera pan, a drifting square; SECONDS long at FPS, FRAME_SIZE):

- reference: the original's data flow: one sample per time t carries its own
  l + 2 frames (the l history frames and the frames at t and t + 1), encoded by
  a TimeDistributed frame encoder; batches of 4; the samples in the order of the
  original's 70% shuffle buffer (the order only: a buffer of 70% of the samples'
  frames as float32 would not fit in memory); the forecaster's LSTM as a loop.
- chunked: `train_model.py`'s video defaults, and the same without spread frames (SPREADS) (VIDEO_CHUNK_SAMPLES consecutive
  samples per chunk, VIDEO_CHUNKS_PER_BATCH chunks per step, VIDEO_ORDER, and
  VIDEO_SPREAD_FRAMES frames from across the video reconstructed with each
  step's chunk), frames gathered in the graph from uint8 and scaled per batch.

Both start from the same seed and train in blocks of BLOCK steps; after every
block the reconstruction BCE over every EVAL_EVERY-th frame is measured
(inference, with the decoder's batch-norm statistics recalibrated as
train_model.py does before it saves; not counted as training time). The reference trains REF_STEPS
steps; the chunked model trains until its BCE is at or below the reference's
last BCE (at most MAX_STEPS steps). The speed-up is the reference's training
seconds over the chunked model's training seconds to that BCE.

Memory: stage 1 (`save_dataset.py --source video`) and stage 2 (`train_model.py`)
run as subprocesses on a MEMORY_MINUTES-minute video at FPS_MEMORY and FRAME_SIZE;
the peak resident memory of each is read from the kernel (os.wait4's ru_maxrss).
Stage 2 is stopped (SIGINT, as Ctrl-C) TRAIN_SECONDS after it starts training:
by then the frames are in memory (uint8, once in numpy and once in TensorFlow),
the graph is traced and the first steps have run.

Writes benchmarks/results/bench_video_training.md and the README section
`bench_video_training`. Run:

    .venv/bin/python benchmarks/bench_video_training.py [--seconds 120] [--ref-steps 64]

Every setting below can be given on the command line (``--help`` lists them).
"""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

import settings  # noqa: E402
from dae import cli, config, docs, frames as video_frames, layout, synth, training  # noqa: E402
from dae.embedding import encode  # noqa: E402
from dae.errors import UserError  # noqa: E402
from dae.video_source import VIDEO_FORECASTER_UNITS  # noqa: E402

SECONDS = 120.0          # the speed part's video: 2 minutes ...
FPS = 30                 # ... at 30 frames per second
FRAME_SIZE = "150x268"   # the original's frame size (the memory part's, and the speed part's unless SPEED_FRAME_SIZE)
SPEED_FRAME_SIZE = ""    # the speed part's frame size if not FRAME_SIZE (e.g. 48x86 where 150x268 cannot train far enough)
HISTORY = 75             # l, the original's video history
SEED = 0
BLOCK = 4                # training steps between BCE measurements
REF_STEPS = 64           # the reference's training steps
MAX_STEPS = 192          # the chunked model's most steps
SPREADS = "default,0"    # the chunked runs: frames drawn from across the video per step ("default": train_model's)
EVAL_EVERY = 10          # BCE over every 10th frame
MEMORY_MINUTES = 10.0    # the memory part's video length (0 = skip the memory part)
FPS_MEMORY = 30
TRAIN_SECONDS = 120      # stage 2 runs this long after it starts training, then is stopped
MEMORY_LIMIT_GB = 6.0    # stage 2 is stopped at once when it holds more than this (the machine is shared)
MARGIN = 0.01            # the reference must lower its BCE by this fraction of the initial BCE for a speed-up claim
OUT = "benchmarks/results/bench_video_training.md"   # the default also updates the README's section
OUT_DEFAULT = OUT
# stage 2 schedules whose memory is measured: (label, extra train_model.py arguments)
MEMORY_SCHEDULES = (("the video defaults: 1 chunk of 16 samples per step", ()),
                    ("4 chunks of 16 samples per step", ("--video-chunks-per-batch", "4")))


@dataclass(frozen=True)
class Bench(config.Settings):
    """The benchmark's settings; `cli.parse(Bench, globals())` takes their defaults from the constants above."""
    seconds: float = config.setting(SECONDS, "the speed part's video length", unit="s", least=1.0, most=3600.0)
    fps: int = config.setting(FPS, "the speed part's frame rate", unit="frames/s", least=1, most=1000)
    frame_size: str = config.same_as(config.Song, "frame_size")
    speed_frame_size: str = config.setting(SPEED_FRAME_SIZE, "the speed part's frame size (HEIGHTxWIDTH) if not "
                                                             "FRAME_SIZE; empty = FRAME_SIZE")
    history: int = config.same_as(config.Run, "history")
    seed: int = config.same_as(config.Run, "seed")
    block: int = config.setting(BLOCK, "training steps between BCE measurements", unit="steps", least=1,
                                most=100_000)
    ref_steps: int = config.setting(REF_STEPS, "the reference's training steps (whole blocks of BLOCK)",
                                    unit="steps", least=1, most=1_000_000)
    max_steps: int = config.setting(MAX_STEPS, "the chunked model's most steps", unit="steps", least=1,
                                    most=1_000_000)
    spreads: str = config.setting(SPREADS, "the chunked runs: comma-separated frames drawn from across the video "
                                           "per step (\"default\": train_model.py's VIDEO_SPREAD_FRAMES)")
    eval_every: int = config.setting(EVAL_EVERY, "the BCE is measured over every EVAL_EVERY-th frame", least=1)
    memory_minutes: float = config.setting(MEMORY_MINUTES, "the memory part's video length (0 = skip the memory "
                                                           "part)", unit="min", least=0.0, most=60.0)
    fps_memory: int = config.setting(FPS_MEMORY, "the memory part's frame rate", unit="frames/s", least=1,
                                     most=1000)
    train_seconds: int = config.setting(TRAIN_SECONDS, "stage 2 runs this long after it starts training, then is "
                                                       "stopped", unit="s", least=0)
    memory_limit_gb: float = config.setting(MEMORY_LIMIT_GB, "stage 2 is stopped at once when it holds more than "
                                                             "this (the machine is shared)", unit="GB", least=0.0,
                                            above=True)
    margin: float = config.setting(MARGIN, "the reference must lower its BCE by this fraction of the initial BCE "
                                           "for a speed-up claim", least=0.0, most=1.0)
    out: str = config.setting(OUT, "the report's Markdown file (the default also updates the README's section)")


def spreads_of(cfg, default):
    """The chunked runs' spread frames from SPREADS ("default" = `default`), each once, in order."""
    out = []
    for v in cfg.spreads.split(","):
        v = v.strip()
        if v == "default":
            out.append(default)
        elif v.isdigit():
            out.append(int(v))
        else:
            raise UserError(f"SPREADS={cfg.spreads!r}: each must be \"default\" or a whole number of frames, "
                            f"not {v!r}")
    return list(dict.fromkeys(out))


def scene(seconds, fps, size):
    """The demo video's scene at `size` (height, width), `seconds` long."""
    return synth.demo_video(seconds=seconds, fps=fps, size=size)


def load():
    return os.getloadavg()[0]


# ---------------------------------------------------------------- the reference

def reference_model(shape, seed, history):
    import keras
    from bench_training import Straightforward
    from dae.model import build_forecaster, build_frame_decoder, build_frame_encoder
    keras.utils.set_random_seed(seed)
    class Reference(Straightforward):
        def train_step(self, data):          # train_on_batch passes (x, y, sample_weight)
            return super().train_step((data[0], None))

    model = Reference(build_frame_encoder(shape, 3), build_frame_decoder(shape, 3),
                            build_forecaster(history, 3, units=VIDEO_FORECASTER_UNITS, unroll=False),
                            0.001, 1.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def reference_batches(frames, seed, history, batch=4):
    """Batches of ((l history frames, 2 top frames), 0) per sample, each sample's frames copied and
    scaled, in the order of the original's shuffle buffer."""
    n_samples = len(frames) - history
    order = history - 1 + training.shuffle_buffer_order(n_samples, int(0.7 * n_samples),
                                                        np.random.default_rng(seed))
    for i in range(0, len(order) - batch + 1, batch):
        ts = order[i:i + batch]
        clip = np.stack([frames[t - history + 1:t + 1] for t in ts]).astype(np.float32)[..., None] / 255
        top = np.stack([frames[t:t + 2] for t in ts]).astype(np.float32)[..., None] / 255
        yield (clip, top), np.zeros(batch, np.float32)


def bce(encoder, decoder, frames, every):
    """The reconstruction BCE over every `every`-th frame of the model as train_model.py saves it: the
    decoder's batch-norm statistics recalibrated (on those frames) first, then put back as they were, so
    that training goes on untouched (its running averages lag far behind early in training)."""
    sample = frames[::every]
    layers = [l for l in decoder.layers if hasattr(l, "moving_mean")]
    kept = [(l.moving_mean.numpy(), l.moving_variance.numpy()) for l in layers]
    training.recalibrate_batch_norm(decoder, encode(encoder, sample, 1, batch_size=64))
    value = training.reconstruction_bce(encoder, decoder, sample, 1, batch_size=64)
    for layer, (mean, var) in zip(layers, kept):
        layer.moving_mean.assign(mean)
        layer.moving_variance.assign(var)
    return value


def train_reference(cfg, frames, shape):
    model = reference_model(shape, cfg.seed, cfg.history)
    batches = reference_batches(frames, cfg.seed, cfg.history)
    curve, seconds = [(0, 0.0, bce(model.encoder, model.decoder, frames, cfg.eval_every))], 0.0
    print(f"reference: initial BCE {curve[0][2]:.5f}", flush=True)
    for _ in range(cfg.ref_steps // cfg.block):
        t0 = time.perf_counter()                 # the generator's copying is part of the reference's cost
        for (clip, top), y in (next(batches) for _ in range(cfg.block)):
            model.train_on_batch((clip, top), y)
        seconds += time.perf_counter() - t0
        curve.append((len(curve) * cfg.block, seconds, bce(model.encoder, model.decoder, frames, cfg.eval_every)))
        print(f"reference: {curve[-1][0]} steps, {seconds:.1f} s, BCE {curve[-1][2]:.5f}", flush=True)
    return curve


# ---------------------------------------------------------------- the chunked default

def train_chunked(cfg, defaults, frames, target, spread):
    """defaults : train_model.py's `config.Training` (its video schedule)."""
    import tensorflow as tf
    c, k, order = defaults.video_chunk_samples, defaults.video_chunks_per_batch, defaults.video_order
    block, history = cfg.block, cfg.history
    n_samples = training.check_length(len(frames), 1, history, cfg.fps, 1, hop=1)
    epochs = int(np.ceil(cfg.max_steps / max(1, n_samples // (c * k)))) + 1
    plan = training.plan(n_samples, c, k, epochs, cfg.seed, order, spread, len(frames))
    plan = plan.reshape(-1, plan.shape[-1])
    import keras
    keras.utils.set_random_seed(cfg.seed)
    model = training.build(frames, width=1, latent_dim=3, history=history, window_seconds=0.5, chunk_samples=c,
                           alpha=0.001, beta=1.0, gamma=0.0, delta=0.0, learning_rate=1e-3, steps_per_execution=block,
                           spread=spread)
    curve, seconds, step = [(0, 0.0, bce(model.encoder, model.decoder, frames, cfg.eval_every))], 0.0, 0
    print(f"chunked, spread {spread}: initial BCE {curve[0][2]:.5f}", flush=True)
    while step < cfg.max_steps:
        data = tf.data.Dataset.from_tensor_slices(plan[step:step + block])
        t0 = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=block, shuffle=False, verbose=0)
        seconds += time.perf_counter() - t0
        step += block
        curve.append((step, seconds, bce(model.encoder, model.decoder, frames, cfg.eval_every)))
        print(f"chunked, spread {spread}: {step} steps, {seconds:.1f} s, BCE {curve[-1][2]:.5f}", flush=True)
        if curve[-1][2] <= target:
            break
    return curve, (c, k, order, spread)


# ---------------------------------------------------------------- memory of stages 1 and 2

def _hwm(pid):
    """The peak resident memory of process `pid` so far (VmHWM, bytes), or 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_rss(cmd, limit_gb, stop_after=None, when=None):
    """Run `cmd`; its peak resident memory in bytes, its exit status and output.

    The peak is the kernel's high-water mark of the process's own memory (VmHWM,
    read every 0.1 s while it runs: it only grows, so the last reading is the peak
    up to 0.1 s before the end). (ru_maxrss would also count the memory of this
    process, which the child shares between fork and exec.) stop_after : seconds
    after a stdout line containing `when` to send SIGINT (as Ctrl-C). limit_gb : the process is
    sent SIGINT at once when its peak passes this many GB.
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []

    def read():
        for line in proc.stdout:
            lines.append(line)
            if when and when in line and stop_after:
                threading.Timer(stop_after, lambda: proc.poll() is None and proc.send_signal(signal.SIGINT)).start()
    reader = threading.Thread(target=read)
    reader.start()
    peak, over = 0, False
    while proc.poll() is None:
        peak = max(peak, _hwm(proc.pid))
        if peak > limit_gb * 1e9 and not over:   # enough to know; do not crowd the machine
            over = True
            proc.send_signal(signal.SIGINT)
        time.sleep(0.1)
    reader.join()
    return peak, proc.returncode, "".join(lines), over


def memory_part(cfg, tmp, size):
    minutes, fps = cfg.memory_minutes, cfg.fps_memory
    n = int(round(minutes * 60 * fps))
    video = Path(tmp) / "long.mp4"
    t0 = time.perf_counter()
    # synthesised in 1-minute pieces and concatenated by ffmpeg, so this process never holds it all
    pieces = []
    for i in range(int(np.ceil(minutes))):
        part = scene(min(60.0, minutes * 60 - 60 * i), fps, size)
        pieces.append(video_frames.write_video(Path(tmp) / f"part{i}.mp4", part, fps))
        del part
    listing = Path(tmp) / "parts.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in pieces))
    import imageio_ffmpeg
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "concat", "-safe", "0",
                    "-i", str(listing), "-c", "copy", str(video)], check=True)
    print(f"memory: synthesised {n} frames in {time.perf_counter() - t0:.0f} s", flush=True)
    args = ["--song", str(video), "--source", "video", "--frame-size", cfg.frame_size, "--history",
            str(cfg.history), "--data-dir", str(Path(tmp) / "data"), "--output-dir", str(Path(tmp) / "out")]
    rss1, code1, out1, _ = peak_rss([sys.executable, str(ROOT / "save_dataset.py"), *args[:6], *args[8:]],
                                    cfg.memory_limit_gb)
    if code1 != 0:
        raise SystemExit(f"stage 1 failed: {out1[-500:]}")
    print(f"memory: stage 1 peak {rss1 / 1e9:.2f} GB", flush=True)
    stage2 = []
    for label, extra in MEMORY_SCHEDULES:
        rss2, code2, out2, over = peak_rss([sys.executable, str(ROOT / "train_model.py"), *args, *extra,
                                            "--verbose", "0"], cfg.memory_limit_gb,
                                           stop_after=cfg.train_seconds, when="training ")
        if code2 not in (0, 130):
            raise SystemExit(f"stage 2 failed: {out2[-500:]}")
        stage2.append((label, rss2 / 1e9, over, code2 == 130))
        print(f"memory: stage 2 ({label}) peak {rss2 / 1e9:.2f} GB{' (over the limit: stopped)' if over else ''}",
              flush=True)
    h, w = layout.parse_size(cfg.frame_size)
    return {"frames": n, "uint8_mb": n * h * w / 1e6, "float32_mb": 4 * n * h * w / 1e6,
            "stage1_gb": rss1 / 1e9, "stage2": stage2}


# ---------------------------------------------------------------- report

def report(cfg, ref, chunked, mem, loads, n_frames, size):
    """The README section; chunked : [(curve, (c, k, order, spread)), ...], the first is the default."""
    target = ref[-1][2]
    learned = ref[0][2] - target >= cfg.margin * ref[0][2]
    history = cfg.history
    h, w = size
    lines = [f"Measured by `benchmarks/bench_video_training.py` in one run on this 2-core machine, shared with "
             f"other jobs (1-minute load average {loads[0]:.1f} at the start, {loads[1]:.1f} after the speed "
             f"part)."]
    if mem:
        lines += ["", f"**Memory**, a {cfg.memory_minutes:g}-minute video at {cfg.fps_memory} frames/s "
                  f"({mem['frames']} frames at {cfg.frame_size}; {mem['uint8_mb']:.0f} MB as uint8, "
                  f"{mem['float32_mb']:.0f} MB as float32), peak resident memory of each stage's process:", "",
                  "| stage | peak memory |", "|---|---|",
                  f"| 1: `save_dataset.py --source video` | {mem['stage1_gb']:.2f} GB |"]
        for label, gb, over, stopped in mem["stage2"]:
            how = (f"over {cfg.memory_limit_gb:g} GB: stopped there" if over else
                   f"stopped {cfg.train_seconds} s into training" if stopped else "whole run")
            lines.append(f"| 2: `train_model.py`, {label} ({how}) | {'> ' if over else ''}{gb:.2f} GB |")
        lines += ["", "Under 4 GB: stage 1 " + ("yes" if mem["stage1_gb"] < 4 else "NO") + "; stage 2 " +
                  "; ".join(f"{label}: {'yes' if gb < 4 and not over else 'NO'}" for label, gb, over, _ in mem["stage2"])
                  + ". The frames stay uint8 (once in numpy, once in TensorFlow); what grows with the schedule "
                  "is the activations of the frames encoded per step (chunks x (chunk samples + l))."]
    lines += ["", f"**Speed**, a {cfg.seconds:g} s synthesised video at {cfg.fps} frames/s ({n_frames} frames) "
              f"read at {h}x{w}, history l = {history}, seed {cfg.seed}; reconstruction BCE over every "
              f"{cfg.eval_every}th frame before training and after every {cfg.block} steps (graph tracing counts "
              "in the first block of both):", "",
              "| method | steps | samples | training seconds | BCE (initial -> last) |", "|---|---|---|---|---|"]
    lines.append(f"| reference (TimeDistributed over l + 2 = {history + 2} frames per sample, batch 4) | "
                 f"{ref[-1][0]} | {ref[-1][0] * 4} | {ref[-1][1]:.1f} | {ref[0][2]:.5f} -> {ref[-1][2]:.5f} |")
    verdicts = []
    for n, (chunk, (c, k, order, spread)) in enumerate(chunked):
        reached = next((r for r in chunk[1:] if r[2] <= target), None)
        last = reached or chunk[-1]
        name = (f"chunked{' (the default)' if n == 0 else ''}: {k} chunk{'s' if k > 1 else ''} of {c} samples, "
                f"{order}, {c + history} frames per chunk, {spread} spread frames per step")
        lines.append(f"| {name} | {last[0]} | {last[0] * c * k} | {last[1]:.1f} | {chunk[0][2]:.5f} -> "
                     f"{last[2]:.5f} |")
        per_sample = (f"{last[0] * c * k / last[1]:.1f} samples per second of training against the reference's "
                      f"{ref[-1][0] * 4 / ref[-1][1]:.1f}, encoding {(c + history + spread / k) / c:.1f} frames per "
                      f"sample against {history + 2}")
        if not learned:
            verdicts.append(f"With {spread} spread frames: {per_sample}.")
        elif reached:
            verdicts.append(f"With {spread} spread frames the chunked training reached the reference's last BCE "
                            f"({target:.5f}) after {reached[0]} steps in {reached[1]:.1f} s: "
                            f"**{ref[-1][1] / reached[1]:.2f}x** the reference's speed to an equal or lower "
                            f"reconstruction loss ({per_sample}).")
        else:
            verdicts.append(f"With {spread} spread frames the chunked training did not reach the reference's BCE "
                            f"({target:.5f}) within {cfg.max_steps} steps ({chunk[-1][1]:.1f} s, "
                            f"BCE {chunk[-1][2]:.5f}): "
                            f"no speed-up at equal loss is claimed ({per_sample}).")
    lines.append("")
    if not learned:
        lines.append(f"The reference did not lower its BCE by {cfg.margin:.0%} within {ref[-1][0]} steps, so no "
                     f"speed-up at equal reconstruction loss is claimed from this run.")
    lines.append(" ".join(verdicts))
    return "\n".join(lines) + "\n"


def main():
    cfg = cli.parse(Bench, globals())
    if cfg.ref_steps < cfg.block:
        raise UserError(f"REF_STEPS={cfg.ref_steps} must be at least BLOCK={cfg.block} (the reference trains "
                        "whole blocks)")
    import train_model
    defaults = config.Training.from_constants(settings, train_model)   # train_model.py's video schedule
    spreads = spreads_of(cfg, defaults.video_spread_frames)
    size = layout.parse_size(cfg.speed_frame_size or cfg.frame_size)
    loads = [load()]
    with tempfile.TemporaryDirectory() as tmp:
        # memory first, while this process holds no TensorFlow (the machine is shared)
        mem = memory_part(cfg, tmp, layout.parse_size(cfg.frame_size)) if cfg.memory_minutes > 0 else None
        video = video_frames.write_video(Path(tmp) / "speed.mp4", scene(cfg.seconds, cfg.fps, size), cfg.fps)
        frames = video_frames.read(video, size)[0]
        print(f"speed: {len(frames)} frames of {size[0]}x{size[1]}", flush=True)
        ref = train_reference(cfg, frames, size)
        chunked = [train_chunked(cfg, defaults, frames, ref[-1][2], spread) for spread in spreads]
        loads.append(load())
    text = report(cfg, ref, chunked, mem, loads, len(frames), size)
    print(text)
    out = ROOT / cfg.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    if cfg.out == OUT_DEFAULT and docs.splice(ROOT / "README.md", "bench_video_training", text):
        print("README section bench_video_training updated")


if __name__ == "__main__":
    cli.run(main)
