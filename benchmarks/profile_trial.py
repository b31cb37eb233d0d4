"""Where one experiment trial's seconds go: a table, phase by phase.

Runs trials of experiment.py's default grid (variant R-F, window 0.5 s, latent
size 3, the experiment's epochs) on one synthesised 30 s song in a fresh Python
process, as a Ray worker runs them: the first trial pays the interpreter's
start and the imports; a second trial (another seed) in the same process shows
what a reused worker pays. Every phase is timed with time.perf_counter (wall)
and time.process_time (CPU) around the functions that do it (wrapped from
outside: the code profiled is the code as it is), each second counted once,
in the innermost phase it was spent in, so a column adds up to the trial's time.

    .venv/bin/python benchmarks/profile_trial.py                    # this checkout
    .venv/bin/python benchmarks/profile_trial.py --compare true     # and the reference commit, side by side
    .venv/bin/python benchmarks/profile_trial.py --cprofile true    # and cProfile's top functions

Writes the table to outputs/profile_trial.md (and prints it) and, with --report
true, into the README's generated section profile_trial.
"""
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":       # imported by the profiled process, whose own checkout comes first
    sys.path.insert(0, str(ROOT))

from dae import cli, config, docs  # noqa: E402
from dae.config import setting  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Settings(config.Settings):
    """The trials profiled."""
    song: str = setting("synth-20", "the synthesised song (synth-<n>)")
    seconds: float = setting(30.0, "its length", unit="s", least=1.0)
    rate: int = setting(44100, "its sample rate (the experiment's SYNTH_RATE)", unit="Hz", least=8000)
    variant: str = setting("R-F", "the variant (experiment.py's VARIANT_SETTINGS)")
    epochs: int = setting(0, "epochs; 0 = the experiment's default (as the original: 6)", least=0)
    trials: int = setting(2, "trials in the one process (seeds 1, 2, ...): the first pays the imports", least=1)
    compare: bool = setting(False, "also profile bench_experiment.py's REFERENCE commit (today's path), side by side")
    cprofile: bool = setting(False, "also print cProfile's 40 costliest functions (cumulative) of the last trial")
    report: bool = setting(True, "also write the table into the README's generated section profile_trial")


# (module, attribute, phase): each wrapped so that its time is counted in its phase (less what
# the phases inside it took). A name a checkout lacks is skipped; a phase may be a function of the
# call's arguments.
HOOKS = [
    ("dae.trials", "prepare_song", "song preparation (synthesis, spectrogram)"),
    ("dae.training", "build", "training: building the model"),
    ("dae.training", "recalibrate_batch_norm", "training: batch-norm recalibration"),
    ("dae.training", "save_models", "training: saving the models"),
    ("dae.training", "save_checkpoint", "training: checkpoints and history"),
    ("dae.training", "history_csv", "training: checkpoints and history"),
    ("dae.stages", "train_model", "training: the rest (data, plan, Keras fit set-up)"),
    ("dae.trials", "embed_stage", "embedding: the rest"),
    ("dae.embedding", "encode", "embedding: encoding every window"),
    ("dae.embedding", "save", "writing files"),
    ("dae.provenance", "load_keras", "loading Keras models"),
    ("dae.trials", "divergence_stage", lambda paths, original_rule, *a, **k:
     f"divergence pass, {'original' if original_rule else 'exclusion'} rule"),
    ("dae.trials", "divergences", "divergence passes, both rules"),
    ("dae.forecast", "divergence", "divergence: KNN forecasts"),
    ("dae.trials", "reconstruction", "reconstruction BCE"),
    ("dae.trials", "trustworthiness", "trustworthiness"),
    ("dae.provenance", "check", "provenance checks (records, sha256)"),
    ("dae.provenance", "file_hash", "sha256 of files"),
    ("dae.provenance", "versions", "package versions for records"),
    ("dae.store", "save_npz", "writing files"),
    ("dae.store", "save_text", "writing files"),
    ("dae.store", "commit_model", "writing files"),
    ("dae.trials", "measure", "metrics: the rest"),
    ("dae.trials", "run_trial", "trial: the rest"),
]

CHILD = textwrap.dedent(r"""
    import time
    T0, C0 = time.time(), time.process_time()
    import json, sys
    root, args = sys.argv[1], json.loads(sys.argv[2])
    sys.path.insert(0, root)
    sys.path.insert(0, args["bench"])
    t = time.perf_counter(), time.process_time()
    from dae import config, grid, trials
    import profile_trial as P
    imported = P.since(t)
    timer = P.Timer()
    timer.add("process start (interpreter)", (T0 - args["launched"], C0))
    timer.add("imports: numpy, scipy, the project", imported)
    t = P.clock()
    import dae.training
    timer.add("imports: TensorFlow and Keras", P.since(t))
    P.install(timer)
    P.split_fit(timer)
    import experiment
    cfg = config.Experiment(songs=args["song"], variants=args["variant"], seeds=",".join(map(str, range(1, args["trials"] + 1))),
                            epochs=args["epochs"], use_ray=False, synth_seconds=args["seconds"], synth_rate=args["rate"],
                            data_dir=args["data"], output_dir=args["out"], name="profile")
    todo, _, _ = grid.build_grid(cfg, experiment.VARIANT_SETTINGS, config.Training.from_constants(experiment.settings, experiment.train_model))
    training = config.Training.from_constants(experiment.settings, experiment.train_model)
    divergence = config.Divergence.from_constants(experiment.settings, experiment.divergence_stage)
    out = []
    for i, tr in enumerate(todo):
        if i == len(todo) - 1 and args["cprofile"]:
            import cProfile, pstats, io
            prof = cProfile.Profile()
            prof.enable()
        start = time.perf_counter()
        prepared = trials.prepare_song(tr["song"], tr["window"], tr["data_dir"], tr["output_dir"], tr["synth_seconds"], tr["synth_rate"]) if i == 0 else {"ok": True}
        r = trials.run_trial(dict(tr, threads=1, log_dir=None), prepared, training=training, divergence=divergence)
        wall = time.perf_counter() - start
        if i == len(todo) - 1 and args["cprofile"]:
            prof.disable()
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(40)
            sys.stderr.write(s.getvalue())
        assert r["status"] == "ok", r
        out.append({"phases": timer.take(), "wall": wall, "computed": r["computed"], "key": r["key"],
                    "metrics": {k: r[k] for k in ("turning_angle", "bce", "trustworthiness", "delta_x_1", "delta_o_29")}})
    print("PROFILE " + json.dumps(out))
""")


def clock():
    """(wall, CPU) seconds now: the CPU of every thread of this process."""
    return time.perf_counter(), time.process_time()


def since(start):
    now = clock()
    return now[0] - start[0], now[1] - start[1]


class Timer:
    """(wall, CPU) seconds per phase, each second counted once: in the innermost timed call it was spent in."""

    def __init__(self):
        self.seconds, self.stack = {}, []

    def add(self, phase, seconds):
        old = self.seconds.get(phase, (0.0, 0.0))
        self.seconds[phase] = (old[0] + seconds[0], old[1] + seconds[1])

    def take(self):
        taken, self.seconds = self.seconds, {}
        return taken

    def enter(self):
        self.stack.append((0.0, 0.0))
        return clock()

    def leave(self, phase, start, less=(0.0, 0.0)):
        """Count the call that began at `start` in `phase`, less the phases inside it and `less`."""
        elapsed, inner = since(start), self.stack.pop()
        self.add(phase, (elapsed[0] - inner[0] - less[0], elapsed[1] - inner[1] - less[1]))
        if self.stack:
            self.stack[-1] = (self.stack[-1][0] + elapsed[0], self.stack[-1][1] + elapsed[1])

    def wrap(self, fn, phase):
        import functools

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            name = phase(*args, **kwargs) if callable(phase) else phase
            start = self.enter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.leave(name, start)
        return timed


def install(timer):
    """Wrap every hook the checkout has (a function imported by name elsewhere is wrapped there too)."""
    import importlib
    wrapped = {}
    for module, name, phase in HOOKS:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        fn = getattr(mod, name, None)
        if fn is None:
            continue
        wrapped[id(fn)] = (fn, timer.wrap(fn, phase))
        setattr(mod, name, wrapped[id(fn)][1])
    for mod in [m for n, m in sys.modules.items() if n.startswith("dae.") and m is not None]:
        for attr, value in list(vars(mod).items()):
            if id(value) in wrapped and value is wrapped[id(value)][0]:
                setattr(mod, attr, wrapped[id(value)][1])


TRACING = "training: first call into the graph (tracing, compiling)"


def split_fit(timer):
    """Split Keras's fit into its first call into the graph (tracing and compiling: that call's time
    less the median time of a later call, which runs as many steps) and the training steps."""
    from dae import training
    base = training.EpochCheckpoint
    first = {}

    class Timed(base):
        def on_train_begin(self, logs=None):
            self._calls = [clock()]
            super().on_train_begin(logs)

        def on_train_batch_end(self, batch, logs=None):
            self._calls.append(clock())
            super().on_train_batch_end(batch, logs)

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            self._calls.append(None)            # the epoch's end (a checkpoint) is not a call

        def on_train_end(self, logs=None):
            super().on_train_end(logs)
            c = self._calls
            later = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(c[1:], c[2:]) if a is not None and b is not None]
            if len(c) < 3 or not later:
                return
            mid = len(later) // 2
            steady = (sorted(x[0] for x in later)[mid], sorted(x[1] for x in later)[mid])
            first["traced"] = (max(0.0, c[1][0] - c[0][0] - steady[0]), max(0.0, c[1][1] - c[0][1] - steady[1]))
    training.EpochCheckpoint = Timed
    fit = training.ConditionedAutoencoder.fit

    def timed_fit(self, *args, **kwargs):
        start = timer.enter()
        first.clear()
        try:
            return fit(self, *args, **kwargs)
        finally:
            traced = first.get("traced", (0.0, 0.0))
            timer.add(TRACING, traced)
            timer.leave("training: steps (Keras fit)", start, less=traced)
    training.ConditionedAutoencoder.fit = timed_fit


ORDER = ["process start (interpreter)", "imports: numpy, scipy, the project", "imports: TensorFlow and Keras",
         "song preparation (synthesis, spectrogram)", "training: building the model",
         "training: first call into the graph (tracing, compiling)", "training: steps (Keras fit)",
         "training: checkpoints and history", "training: batch-norm recalibration", "training: saving the models",
         "training: the rest (data, plan, Keras fit set-up)", "loading Keras models",
         "embedding: encoding every window", "embedding: the rest", "divergence: KNN forecasts",
         "divergence pass, exclusion rule", "divergence pass, original rule", "divergence passes, both rules",
         "trustworthiness", "reconstruction BCE", "metrics: the rest", "provenance checks (records, sha256)",
         "sha256 of files", "package versions for records", "writing files", "trial: the rest"]


def profile(code, s: Settings, tmp):
    """Run the trials of `s` with the experiment at `code` in a fresh process; [{phases, wall, ...}, ...]."""
    args = {"song": s.song, "seconds": s.seconds, "rate": s.rate, "variant": s.variant, "epochs": s.epochs,
            "trials": s.trials, "cprofile": s.cprofile, "data": str(tmp / "data"), "out": str(tmp / "outputs"),
            "bench": str(ROOT / "benchmarks"), "launched": time.time()}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(code), json.dumps(args)], cwd=code, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(code), TF_NUM_INTRAOP_THREADS="1",
                                              TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2",
                                              OMP_NUM_THREADS="1"))   # as a 1-CPU Ray worker
    if s.cprofile:
        sys.stderr.write(proc.stderr[-20000:])
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PROFILE ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"profiling {code} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("PROFILE "):])


def total(c):
    """A trial's (wall, CPU) seconds: the sum of its phases."""
    return tuple(sum(v[i] for v in c["phases"].values()) for i in (0, 1))


def table(columns):
    """Markdown: a row per phase, a column per (name, trial), each cell 'wall / CPU' seconds."""
    phases = [p for p in ORDER if any(p in c["phases"] for _, c in columns)]
    phases += sorted({p for _, c in columns for p in c["phases"]} - set(phases))
    head = "| phase | " + " | ".join(name for name, _ in columns) + " |"
    lines = [head, "|---|" + "---|" * len(columns)]
    for p in phases:
        cells = []
        for _, c in columns:
            v = c["phases"].get(p)
            cells.append("" if v is None else f"{v[0]:.2f} / {v[1]:.2f}")
        if all(c in ("", "0.00 / 0.00") for c in cells):
            continue
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    lines.append("| **total** | " + " | ".join("**{:.1f} / {:.1f}**".format(*total(c)) for _, c in columns) + " |")
    return "\n".join(lines)


def main():
    s = cli.parse(Settings, globals())
    from bench_experiment import REFERENCE, checkout
    runs, load = [], os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if s.compare:
            runs.append((f"today's path ({REFERENCE[:7]})", profile(checkout(REFERENCE, tmp / "reference"), s,
                                                                   tmp / "ref-run")))
        runs.append(("this checkout", profile(ROOT, s, tmp / "run")))
    load = (load, os.getloadavg()[0])
    columns = []
    for name, trials in runs:
        for i, tr in enumerate(trials):
            label = "first trial (fresh process)" if i == 0 else f"trial {i + 1} (same process)"
            columns.append((f"{name}: {label}", tr))
    lines = [f"Trials of the default grid: {s.song}, {s.seconds:g} s at {s.rate} Hz, variant {s.variant}, "
             f"window 0.5 s, latent size 3, {s.epochs or 'the default (6)'} epochs, one TensorFlow thread, one "
             f"trial after the other in one process (as a Ray worker runs them), on a machine with "
             f"{os.cpu_count()} CPUs (load average {load[0]:.1f} before, {load[1]:.1f} after); seconds per phase, "
             "wall / CPU (every thread of the process), each counted once, in the innermost phase it was spent "
             "in: wall well above CPU means other work shared the core.", "", table(columns), ""]
    for name, c in columns:
        steps = c["phases"].get("training: steps (Keras fit)", (0.0, 0.0))[1]
        cpu = total(c)[1]
        lines.append(f"- {name}: `{c['key']}` (computed: {', '.join(c['computed']) or 'nothing'}); the training "
                     f"steps are {steps:.1f} of its {cpu:.1f} CPU seconds ({100 * steps / cpu:.0f}%): the steps alone "
                     f"would be {cpu / steps:.2f}x as fast; " if steps else f"- {name}: `{c['key']}`; ")
        lines[-1] += ", ".join(f"{k} {v:.6g}" for k, v in c["metrics"].items()) + "."
    text = "\n".join(lines) + "\n"
    out = ROOT / "outputs" / "profile_trial.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    spliced = s.report and docs.splice(ROOT / "README.md", "profile_trial", text)
    print(f"saved {out}" + (" and the README's section profile_trial" if spliced else ""))


if __name__ == "__main__":
    main()
