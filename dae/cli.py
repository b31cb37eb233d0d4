"""Command-line overrides for the constants at the top of each script.

Each script keeps its settings as plain UPPER_CASE constants (their values are
the defaults). `configure(globals())` lets any of them be overridden from the
terminal, e.g. ``python train_model.py --song mysong --alpha 0``; unknown names
and abbreviations (``--alph``) are an error and ``--help`` lists every setting
with its default, its allowed range and the comment written next to it. No
code is executed from the command line.

Every value is checked at the door, whether it came from the command line or
from an edited constant: numbers must be finite, and each whole number must
lie in the range `LIMITS` gives for its name (or `WHOLE_RANGE` when the name
is not listed). A bad value ends the script with one line and exit status 1.
"""
import argparse
import math
import re
import sys
from pathlib import Path

from dae.errors import UserError

_COMMENT = re.compile(r"^([A-Z][A-Z0-9_]*)\s*=.*?#\s*(.*)$")

# Allowed range (least, most), both inclusive, of each setting by name; None = no bound
# (for a whole number: WHOLE_RANGE's bound).
# A name used by several scripts means the same kind of thing in each of them.
LIMITS = {
    "SEED": (0, 2 ** 32 - 1),           # numpy / TensorFlow seeds are 32-bit unsigned
    "WINDOW_SECONDS": (0.01, 600.0),
    "LATENT_DIM": (1, 1024),
    "HISTORY": (3, 100_000),            # training needs 3 or more; training.train reads this bound too
    "HORIZON": (1, 10_000),
    "HORIZON_DECAY": (1e-9, 1.0),       # step k weighs HORIZON_DECAY^(k-1): must stay positive
    "LENGTH_WEIGHT": (0.0, None),
    "ALPHA": (0.0, None), "BETA": (0.0, None), "GAMMA": (0.0, None), "DELTA": (0.0, None),
    "LEARNING_RATE": (0.0, 10.0),
    "EPOCHS": (0, 100_000),             # train_model.py: 0 = the original's number
    "BATCH_SIZE": (1, 1_000_000),
    "CHUNK_SAMPLES": (1, 1_000_000),
    "CHUNKS_PER_BATCH": (1, 1_000_000),
    "VIDEO_CHUNK_SAMPLES": (1, 1_000_000),
    "VIDEO_CHUNKS_PER_BATCH": (1, 1_000_000),
    "VIDEO_SPREAD_FRAMES": (0, 1_000_000),
    "VERBOSE": (0, 2),
    "N_STEPS": (1, 1_000_000),
    "INITIAL_CONDITION": (-1, None),    # -1 = a seeded choice
    "K": (1, 10_000),
    "EXCLUSION_RADIUS": (-1, None),     # -1 = the window's width
    "EVERY": (1, None),
    "FIT_STEPS": (2, None),             # a slope needs two points
    "FPS": (1, 240),
    "WIDTH": (64, 7680), "HEIGHT": (64, 4320),
    "WORKERS": (0, 1024),               # 0 = one per CPU core
    "AUDIO_KBPS": (16, 512),
    "FRAME_STEP": (1, 10_000),
    "FOLDER_FPS": (0.001, 1000.0),
    "VALIDATION": (0.0, 0.9),            # AAC bitrate of the player page
}
ABOVE_LEAST = {"LEARNING_RATE"}   # settings whose least is excluded: a step of 0 learns nothing
WHOLE_RANGE = (-(2 ** 31), 2 ** 31 - 1)  # any whole number without its own entry


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + error; exit status 1 as every bad input
        self.exit(1, f"{self.prog}: error: {message} (see --help)\n")


def _parse_bool(text):
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_number(text):
    try:
        value = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _parse_float(text):
    """A number given for a setting whose default is a float: always a float (``1`` -> 1.0)."""
    value = _parse_number(text)
    try:
        return float(value)
    except OverflowError:          # a whole number too large for a float
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}") from None


def _parse_whole(text):
    value = _parse_number(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(value)


def _limits(name, value, limits):
    """(least, most) allowed for setting `name` (None where unbounded).

    A whole number is never unbounded: a missing bound is WHOLE_RANGE's, so no
    setting can overflow the int32/int64 arithmetic of numpy or TensorFlow.
    """
    least, most = limits.get(name, (None, None))
    if isinstance(value, int) and not isinstance(value, bool):
        least = WHOLE_RANGE[0] if least is None else least
        most = WHOLE_RANGE[1] if most is None else most
    return least, most


def check(values, limits=None):
    """Problems with settings `values` (name -> value), one line each; [] when all are fine.

    Numbers must be finite and inside their range: `limits` (name -> (least,
    most)) on top of the module's `LIMITS`.
    """
    table = LIMITS | (limits or {})
    problems = []
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{name}={value} is not a finite number")
            continue
        least, most = _limits(name, value, table)
        if name in ABOVE_LEAST and value <= least:
            problems.append(f"{name}={_shown(value)} must be more than {_shown(least)}")
        elif least is not None and value < least:
            problems.append(f"{name}={_shown(value)} must be at least {_shown(least)}")
        elif most is not None and value > most:
            problems.append(f"{name}={_shown(value)} must be at most {_shown(most)}")
    return problems


def _shown(number):
    """A number as it would be typed: a whole float without its '.0' (``-1.0`` -> ``-1``), else its repr."""
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    return repr(number) if isinstance(number, float) else str(number)


def _range_note(least, most):
    if least is None and most is None:
        return ""
    return f" [{'' if least is None else _shown(least)}..{'' if most is None else _shown(most)}]"


def _comments(files):
    """Map NAME -> inline comment for `NAME = value  # comment` lines in files."""
    found = {}
    for f in files:
        try:
            lines = Path(f).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            m = _COMMENT.match(line)
            if m and m.group(1) not in found:
                found[m.group(1)] = m.group(2).strip()
    return found


def settings_of(namespace):
    """The overridable settings in a module namespace: UPPER_CASE bool/int/float/str."""
    return {k: v for k, v in namespace.items()
            if k.isupper() and not k.startswith("_") and isinstance(v, (bool, int, float, str))}


def configure(namespace, argv=None, limits=None):
    """Override the UPPER_CASE constants of `namespace` from the command line.

    namespace : dict, usually ``globals()`` of the calling script; updated in place. Its
        settings as first seen are kept in ``__defaults__`` and are the defaults of
        every later call, so nothing carries over from one call to the next.
    argv : list of str, default ``sys.argv[1:]``.
    limits : dict name -> (least, most), the script's own ranges on top of `LIMITS`.
    Returns the dict of final settings (name -> value). A value outside its
    range (or NaN / infinite) exits with one line and status 1.
    """
    # the defaults are the script's constants as first seen, never what an earlier call in this
    # process set: a setting left out of a call is its default, not the previous call's value
    settings = dict(namespace.setdefault("__defaults__", settings_of(namespace)))
    sources = [namespace.get("__file__", "")]
    shared = sys.modules.get("settings")
    if shared is not None and getattr(shared, "__file__", None):
        sources.append(shared.__file__)
    notes = _comments(sources) | namespace.get("__notes__", {})  # a script's own notes win (artifacts.select_run)
    doc = (namespace.get("__doc__") or "").strip()
    parser = _Parser(prog=Path(namespace.get("__file__", "script")).name,
                     description=doc.splitlines()[0] if doc else None,
                     formatter_class=argparse.ArgumentDefaultsHelpFormatter, allow_abbrev=False)
    table = LIMITS | (limits or {})
    for name, default in settings.items():
        flags = ["--" + name.lower().replace("_", "-")]
        if "_" in name:
            flags.append("--" + name.lower())
        if isinstance(default, bool):
            kind, meta = _parse_bool, "BOOL"
        elif isinstance(default, int):
            kind, meta = _parse_whole, "INT"
        elif isinstance(default, float):
            kind, meta = _parse_float, "NUMBER"
        else:
            kind, meta = str, "TEXT"
        parser.add_argument(*flags, dest=name, type=kind, default=default, metavar=meta,
                            help=notes.get(name, " ").replace("%", "%%")     # argparse formats help with %
                            + _range_note(*_limits(name, default, table)))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    values = vars(args)
    problems = check(values, limits)
    if problems:
        parser.error("; ".join(problems))
    namespace.update(values)
    return values


def flags(values):
    """The command line that gives a script these settings (name -> value): what `configure` reads back."""
    argv = []
    for name, value in values.items():
        text = ("true" if value else "false") if isinstance(value, bool) else repr(value) if isinstance(value, float) else str(value)
        argv += ["--" + name.lower().replace("_", "-"), text]
    return argv


def run(main):
    """Call `main()`; a UserError, or an OSError (a path the system refused), becomes one line on
    stderr and exit status 1."""
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        print(f"error: {os_error_line(e)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: nothing half-written is left; run the same command again to resume",
              file=sys.stderr)
        sys.exit(130)


def os_error_line(e):
    """One line for an OSError: the path it names (a rename's target), the system's reason, what to do."""
    path = e.filename2 if e.filename2 is not None else e.filename
    reason = (e.strerror or str(e) or type(e).__name__).replace("\n", " ")
    where = f"cannot use {path}: " if path is not None else ""
    return (f"{where}{reason}; fix that path (a folder where a folder is needed, one you may write to, "
            "room on the disk), then run the same command again")
