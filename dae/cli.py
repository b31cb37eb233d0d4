"""Command-line overrides for the constants at the top of each script.

Each script keeps its settings as plain UPPER_CASE constants (their values are
the defaults). `configure(globals())` lets any of them be overridden from the
terminal, e.g. ``python train_model.py --song mysong --alpha 0``; unknown names
are an error and ``--help`` lists every setting with its default and the
comment written next to it. No code is executed from the command line.
"""
import argparse
import re
import sys
from pathlib import Path

from dae.errors import UserError

_COMMENT = re.compile(r"^([A-Z][A-Z0-9_]*)\s*=.*?#\s*(.*)$")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + error
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parse_bool(text):
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_number(text):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _parse_whole(text):
    value = _parse_number(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(value)


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


def configure(namespace, argv=None):
    """Override the UPPER_CASE constants of `namespace` from the command line.

    namespace : dict, usually ``globals()`` of the calling script; updated in place.
    argv : list of str, default ``sys.argv[1:]``.
    Returns the dict of final settings (name -> value).
    """
    settings = settings_of(namespace)
    sources = [namespace.get("__file__", "")]
    shared = sys.modules.get("settings")
    if shared is not None and getattr(shared, "__file__", None):
        sources.append(shared.__file__)
    notes = _comments(sources)
    doc = (namespace.get("__doc__") or "").strip()
    parser = _Parser(prog=Path(namespace.get("__file__", "script")).name,
                     description=doc.splitlines()[0] if doc else None,
                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for name, default in settings.items():
        flags = ["--" + name.lower().replace("_", "-")]
        if "_" in name:
            flags.append("--" + name.lower())
        if isinstance(default, bool):
            kind, meta = _parse_bool, "BOOL"
        elif isinstance(default, int):
            kind, meta = _parse_whole, "INT"
        elif isinstance(default, float):
            kind, meta = _parse_number, "NUMBER"
        else:
            kind, meta = str, "TEXT"
        parser.add_argument(*flags, dest=name, type=kind, default=default, metavar=meta,
                            help=notes.get(name, " "))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    values = vars(args)
    namespace.update(values)
    return values


def run(main):
    """Call `main()`; a UserError becomes one line on stderr and exit status 1."""
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: nothing half-written is left; run the same command again to resume",
              file=sys.stderr)
        sys.exit(130)
