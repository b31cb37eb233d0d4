"""The command line of every script: its constants, overridden from the terminal, become one typed config.

Each script keeps its settings as plain UPPER_CASE constants at its top (and
settings.py holds the ones every stage shares). `parse(config.Training,
settings, globals())` builds the stage's frozen config (`dae.config`) from
them, with any of them overridden on the command line, e.g. ``python
train_model.py --song mysong --alpha 0``. Unknown names and abbreviations
(``--alph``) are an error, and ``--help`` lists every setting with its
default, unit, allowed range and help, all from `dae.config`. No code is
executed from the command line, and nothing is written back: the constants
stay as they are, so a second call in one process starts from them again.

A flag that is not a setting, or a value of the wrong form, ends the script
with argparse's one line; a value the config refuses (outside its range,
not one of its choices, an edited constant of the wrong type) with
``error: ALPHA=...``, naming the setting as the user spells it. Both exit 1.
"""
import argparse
import dataclasses
import math
import sys
from pathlib import Path

from dae.config import SettingError, bounds, shown
from dae.errors import UserError


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help shows the script's whole docstring as written (its examples too) and every default."""


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


def _range_note(least, most):
    if least is None and most is None:
        return ""
    return f" [{'' if least is None else shown(least)}..{'' if most is None else shown(most)}]"


PARSERS = {bool: (_parse_bool, "BOOL"), int: (_parse_whole, "INT"), float: (_parse_float, "NUMBER"), str: (str, "TEXT")}


def parse(kind, *namespaces, argv=None, prog=None, doc=None):
    """The settings of stage `kind` (a `dae.config.Settings` dataclass) for this command line.

    namespaces : modules or dicts of UPPER_CASE constants (settings.py, the script's ``globals()``),
        later ones winning over earlier ones and over `kind`'s defaults; none is changed.
    argv : list of str, default ``sys.argv[1:]``.
    prog, doc : the program's name and description for --help (default: the last namespace's
        ``__file__`` and ``__doc__``).
    Returns a frozen `kind`. A refused value exits with one line and status 1.
    """
    last = namespaces[-1] if namespaces else {}
    last = last if isinstance(last, dict) else vars(last)
    defaults = {f.name: f.default for f in dataclasses.fields(kind)}
    for space in namespaces:
        space = space if isinstance(space, dict) else vars(space)
        defaults.update({k.lower(): v for k, v in space.items() if k.isupper() and k.lower() in defaults})
    doc = (doc if doc is not None else last.get("__doc__") or "").strip()
    parser = _Parser(prog=prog or Path(last.get("__file__", "script")).name, description=doc or None,
                     formatter_class=_Formatter, allow_abbrev=False)
    for name, type_, _, meta in kind.describe():
        flags = ["--" + name.replace("_", "-")] + (["--" + name] if "_" in name else [])
        text = f"selects the run: {meta['selects']}" if kind.READS_RUN and meta.get("selects") else meta["help"]
        if meta.get("unit"):
            text += f" ({meta['unit']})"
        convert, meta_var = PARSERS[type_]
        parser.add_argument(*flags, dest=name, type=convert, default=defaults[name], metavar=meta_var,
                            help=text.replace("%", "%%")                     # argparse formats help with %
                            + (_range_note(*bounds(type_, meta)) if type_ in (int, float) else ""))
    values = vars(parser.parse_args(sys.argv[1:] if argv is None else argv))
    try:
        return kind(**values)
    except SettingError as e:      # a value of the right form that the config refuses: as every bad input
        print(f"error: {e.line(user_names=True)}", file=sys.stderr)
        sys.exit(1)


def run(main):
    """Call `main()`; a UserError, or an OSError (a path the system refused), becomes one line on
    stderr and exit status 1."""
    try:
        main()
    except SettingError as e:              # a library's check of a setting: named as the user spells it
        print(f"error: {e.line(user_names=True)}", file=sys.stderr)
        sys.exit(1)
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
