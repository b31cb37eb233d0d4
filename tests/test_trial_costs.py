"""What a trial computes once instead of twice gives the numbers it gave before (issue 18)."""
import numpy as np
import pytest

from conftest import SR, train_small, write_song
from dae import dataset, embedding, provenance, synth, trials
from dae.errors import UserError


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory):
    """A run trained briefly on a 52 s song (more than 1024 windows: two batches) and embedded."""
    tmp = tmp_path_factory.mktemp("bce")
    song = write_song(tmp / "song.wav", synth.song(4, 52.0, SR))
    paths, *_ = train_small(song, tmp / "data", tmp / "outputs", epochs=1)
    embedding.save(paths, *embedding.embed_song(paths))
    return paths


def test_decoding_the_embedding_gives_the_bce_of_encoding_every_window_again(embedded_run):
    from dae import training
    paths = embedded_run
    emb = embedding.load(paths)
    assert len(emb["Z"]) > 1024
    _, encoder, decoder, _ = training.load_models(paths)
    F, T, S, _ = dataset.load(paths)
    meta = emb["chain"]["encoder"]
    frames = ((S.T - meta["scale_min"]) / (meta["scale_max"] - meta["scale_min"])).astype(np.float32)
    assert trials.decoded_bce(paths, emb) == training.reconstruction_bce(encoder, decoder, frames, meta["width"])


def test_an_embedding_of_another_encoder_is_refused(embedded_run):
    emb = embedding.load(embedded_run)
    emb["chain"]["encoder"] = dict(emb["chain"]["encoder"], sha256="0" * 64)
    with pytest.raises(UserError, match="another encoder"):
        trials.decoded_bce(embedded_run, emb)


def test_versions_are_looked_up_once_and_handed_out_as_copies():
    first = provenance.versions()
    first["numpy"] = "changed"
    assert provenance.versions()["numpy"] != "changed" and "python" in provenance.versions()
