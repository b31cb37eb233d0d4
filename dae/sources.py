"""What a run embeds: a `Source` (the sound of a song, the pictures of a video), chosen by name.

A source knows everything that differs between kinds of input: how stage 1
reads and saves it, what a training sample's window is, which encoder,
decoder and forecaster fit it, how its windows are timed when embedded, what
its run folder's name says, and what the player shows beside the path. The
stages call these and never test which kind they have. A new kind of input
(MIDI, say) is one new module that implements `Source` and one line in
`REGISTRY`.
"""
import importlib
import typing
from dataclasses import dataclass

import numpy as np

REGISTRY = {"audio": "dae.audio_source", "video": "dae.video_source"}   # SOURCE -> the module with its SOURCE


@dataclass(frozen=True)
class TrainingData:
    """A run's training input, as a source prepares it for `dae.training.train`.

    frames : (n, ...) the rows a window is cut from (a scaled spectrogram's columns, a video's frames).
    width : rows per window; rate : rows' source rate (samples or frames per second); hop : samples per row.
    record : the checked stage-1 record it came from; scale : (min, max) mapped to [0, 1].
    validation : the fraction held out at the end; spread : windows drawn from across the song per step.
    chunk_samples, chunks_per_batch, order : the schedule (`dae.training.plan`); epochs : the default epochs.
    what : one line for the user.
    """
    frames: np.ndarray
    width: int
    rate: float
    hop: int
    record: dict
    scale: tuple
    validation: float
    spread: int
    chunk_samples: int
    chunks_per_batch: int
    order: str
    epochs: int
    what: str


class Source(typing.Protocol):
    """The interface of an input kind (see `dae.audio_source` and `dae.video_source`)."""
    name: str            # its SOURCE
    record_kind: str     # the stage-1 artifact a run trains on: "spectrogram", "frames"
    record_facts: tuple  # what that artifact's record must hold (`dae.provenance` refuses one without)
    maker: str           # the command that makes it, for error messages

    def record_path(self, paths):
        """Where the stage-1 artifact of the song (and run) `paths` is."""

    def run_tag(self, cfg) -> typing.Optional[str]:
        """What a run folder's name says of the source beyond the window (None: nothing)."""

    def save(self, paths, cfg) -> None:
        """Stage 1: read the song or video named by cfg.song and save its arrays (and picture)."""

    def saved(self, paths, cfg) -> bool:
        """Whether stage 1's arrays (and, with cfg.plot, picture) are up to date for `cfg`: made by
        this code from the song or video there now, read the same way (`provenance.up_to_date`)."""

    def training_data(self, paths, cfg) -> TrainingData:
        """Stage 2's input, checked against its record."""

    def build_models(self, frames, width, latent_dim, history, window_seconds):
        """(encoder, decoder, forecaster) for windows of `width` rows of `frames`."""

    def embed(self, encoder, meta, chain):
        """Stage 3: every window embedded: (Z (n, d), t_start, t_center, t_end) in seconds."""

    def model_facts(self, record) -> dict:
        """What a trained model's record says of its input's timing, from the stage-1 `record`
        (sample_rate, and for a video hop, points_per_second, source_kind, frame_size)."""

    def embedding_facts(self, record, model) -> dict:
        """What an embedding's record says of its timing, from the stage-1 `record` and the
        model's record (points_per_second, and for a video source_kind and fps)."""

    def what(self, paths, cfg) -> str:
        """A title's words for the run's input: '0.5 s window', 'video, 36x64 frames'."""

    def shown(self, chain, panel=True):
        """What the video and the player page show beside the path: (record, the audio file or None,
        {"spec": (F, T, S)} or {"frames": (images, times)} or {} when `panel` is off)."""


def get(name):
    """The `Source` called `name` (a SOURCE)."""
    if name not in REGISTRY:
        from dae.errors import refused
        raise refused("source", f"={name!r} is not one of {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name]).SOURCE


def by_record_kind():
    """{record kind: the `Source` whose stage-1 artifact it is}."""
    return {source.record_kind: source for source in map(get, REGISTRY)}


def record_of(chain):
    """The stage-1 record (the spectrogram's, a video's frames') of a checked record chain."""
    return chain[of_chain(chain).record_kind]


def of_chain(chain):
    """The `Source` a checked record chain was made from (the kind of its stage-1 record)."""
    for name in REGISTRY:
        source = get(name)
        if source.record_kind in chain:
            return source
    raise ValueError(f"no source's record in the chain {sorted(chain)}")
