"""Deep Audio Embedding: a song becomes a path in a low-dimensional space.

The scripts at the top of the repository are the pipeline; this package holds
the logic they share (audio, spectrogram, windows, models, artifacts, plots).

Importing `dae` quiets TensorFlow's start-up chatter, which would hide the
progress lines users care about: its C++ log level is raised, and the notices
it prints while loading (oneDNN's cannot be turned off by any setting) are
dropped by silencing the process's stderr for the duration of that one import.
oneDNN itself stays on: it makes the 1-D convolutions about 3x faster on a CPU.
"""
import contextlib
import importlib.abc
import importlib.util
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _stderr_silenced():
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):   # no real stderr (e.g. some notebooks): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as usual, then runs its import with stderr silenced."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            run = spec.loader.exec_module

            def exec_module(module):
                with _stderr_silenced():
                    run(module)
            spec.loader.exec_module = exec_module
        return spec


if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
    sys.meta_path.insert(0, _QuietTensorFlow())

from dae.errors import UserError  # noqa: E402

__all__ = ["UserError"]
