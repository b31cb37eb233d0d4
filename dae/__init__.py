"""Deep Audio Embedding: a song becomes a path in a low-dimensional space.

The scripts at the top of the repository are the pipeline; this package holds
the logic they share (audio, spectrogram, windows, models, artifacts, plots).
"""
import os

# TensorFlow's start-up chatter hides the progress lines users care about
# (oneDNN's notice can only be silenced by turning its custom ops off).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from dae.errors import UserError  # noqa: E402

__all__ = ["UserError"]
