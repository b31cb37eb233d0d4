"""Generated sections of the README: numbers come from the run that measured them.

A section is the text between ``<!-- begin NAME -->`` and ``<!-- end NAME -->``
lines; a benchmark or an experiment replaces it with what it measured.
"""
import re
from pathlib import Path

from dae import store


def splice(path, name, text):
    """Replace the generated section `name` of the Markdown file at `path` with `text`.

    The file is rewritten atomically. Returns True if the section was found
    (nothing is written otherwise).
    """
    path = Path(path)
    if not path.exists():
        return False
    old = path.read_text()
    pattern = re.compile(rf"(<!-- begin {re.escape(name)} -->\n).*?(<!-- end {re.escape(name)} -->)", re.S)
    if not pattern.search(old):
        return False
    store.save_text(path, pattern.sub(lambda m: m.group(1) + text.rstrip("\n") + "\n" + m.group(2), old))
    return True
