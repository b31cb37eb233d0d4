"""Spectrogram, crop, window width, scaling and sliding windows."""
import numpy as np
import pytest
from scipy import signal

from dae import UserError
from dae.spectrogram import (crop_bins, magnitude_spectrogram, scale_unit, sliding_windows, window_times,
                             window_width)


@pytest.mark.parametrize("sr", [22050, 44100, 48000])
@pytest.mark.parametrize("freq", [110.0, 440.0, 1000.0, 3000.0])
def test_pure_tone_peaks_in_its_frequency_bin(sr, freq):
    t = np.arange(3 * sr) / sr
    F, T, S = magnitude_spectrogram(0.5 * np.sin(2 * np.pi * freq * t), sr)
    peak = F[np.argmax(S.mean(axis=1))]
    assert abs(peak - freq) <= (sr / 1024) / 2  # within half a bin


def test_tone_amplitude_is_read_as_spectrum_magnitude():
    """scaling='spectrum', mode='magnitude': a bin-centred sine of amplitude A reads A/2."""
    sr, k = 44100, 40
    freq = k * sr / 1024
    x = 0.8 * np.sin(2 * np.pi * freq * np.arange(4 * sr) / sr)
    F, T, S = magnitude_spectrogram(x, sr)
    np.testing.assert_allclose(S[k].mean(), 0.8 / 2, rtol=1e-3)
    assert np.argmax(S.mean(axis=1)) == k
    assert S[k].mean() > 20 * np.delete(S, range(k - 4, k + 5), axis=0).max()  # sidelobes fall off


def test_matches_the_original_scipy_call_exactly():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(44100 * 2)
    F, T, S = magnitude_spectrogram(x, 44100)
    F0, T0, S0 = signal.spectrogram(x, 44100, window=signal.windows.tukey(1024, alpha=0.4), noverlap=0,
                                    scaling="spectrum", mode="magnitude")
    n = int(np.argmin(np.abs(F0 - 4000))) + 1
    np.testing.assert_array_equal(S, S0[:n])
    np.testing.assert_array_equal(T, T0)


@pytest.mark.parametrize("sr, bins", [(44100, 94), (22050, 187), (48000, 86), (8000, 513)])
def test_crop_keeps_bins_up_to_4khz(sr, bins):
    # bin spacing sr/1024; the bin nearest 4 kHz is round(4000 / spacing), kept inclusively
    F, T, S = magnitude_spectrogram(np.random.default_rng(1).standard_normal(sr), sr)
    assert S.shape[0] == len(F) == bins
    assert F[-1] == pytest.approx(min(round(4000 / (sr / 1024)) * sr / 1024, sr / 2))


def test_crop_bins_rejects_empty_input():
    with pytest.raises(ValueError, match="shape"):
        crop_bins(np.array([]))


@pytest.mark.parametrize("sr, seconds, width", [(44100, 0.5, 22), (44100, 2.0, 88), (22050, 0.5, 12),
                                                (48000, 0.5, 24)])
def test_window_width_in_columns(sr, seconds, width):
    F, T, S = magnitude_spectrogram(np.random.default_rng(2).standard_normal(3 * sr), sr)
    assert window_width(T, seconds) == width
    assert width % 2 == 0 and abs(width * 1024 / sr - seconds) < 2 * 1024 / sr


def test_window_width_rejects_nonpositive_seconds():
    with pytest.raises(UserError, match="(?i)WINDOW_SECONDS=0"):
        window_width(np.arange(10.0), 0)


def test_clip_shorter_than_one_column_is_an_error():
    with pytest.raises(UserError, match="shorter than one"):
        magnitude_spectrogram(np.ones(500), 44100)


def test_scale_unit_spans_zero_to_one_and_rejects_constant():
    S = np.array([[1.0, 3.0], [2.0, 5.0]])
    scaled, lo, hi = scale_unit(S)
    assert (lo, hi) == (1.0, 5.0)
    np.testing.assert_allclose(scaled, [[0, 0.5], [0.25, 1]])
    with pytest.raises(UserError, match="constant"):
        scale_unit(np.zeros((4, 4)))


def test_sliding_windows_are_views_of_consecutive_columns():
    X = np.arange(40.0).reshape(10, 4)
    W = sliding_windows(X, 3)
    assert W.shape == (8, 3, 4) and np.shares_memory(W, X)
    for j in range(8):
        np.testing.assert_array_equal(W[j], X[j:j + 3])


def test_window_times_cover_the_audio_of_the_window():
    start, center, end = window_times(5, 22, 44100)
    np.testing.assert_allclose(start, np.arange(5) * 1024 / 44100)
    np.testing.assert_allclose(end - start, 22 * 1024 / 44100)
    np.testing.assert_allclose(center, (start + end) / 2)
