"""Song features on spectrograms with a known answer."""
import numpy as np
import pytest

from dae import features

DT = 1024 / 44100     # seconds between spectrogram columns


def test_a_spectrogram_that_repeats_every_bar_is_periodic_at_that_bar():
    rng = np.random.default_rng(0)
    bar = 86                                        # columns: 2.0 s
    pattern = rng.random((40, bar)) + 0.01
    S = np.tile(pattern, (1, 15))
    r, lag = features.periodicity(S, DT)
    assert r > 0.99
    assert lag == pytest.approx(bar * DT, abs=DT / 2)


def test_noise_is_not_periodic():
    S = np.random.default_rng(1).random((40, 1300)) + 0.01
    r, _ = features.periodicity(S, DT)
    assert r < 0.1


def test_loudness_range_of_a_known_step():
    S = np.ones((10, 1000))
    S[:, 500:] *= 10.0                              # 20 dB louder for the second half
    assert features.loudness_range(S) == pytest.approx(20.0, abs=1e-6)
    assert features.loudness_range(np.ones((3, 50))) == pytest.approx(0.0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="shape"):
        features.periodicity(np.ones(10), DT)
    with pytest.raises(ValueError, match="frame_seconds"):
        features.periodicity(np.ones((3, 1000)), 0)
    with pytest.raises(ValueError, match="no lag"):
        features.periodicity(np.ones((3, 20)), DT)
    with pytest.raises(ValueError, match="non-negative"):
        features.loudness_range(-np.ones((3, 20)))
