"""Sections found from the music: known changes are found, a song that does not change has none."""
import numpy as np
import pytest

from dae import config, sections, spectrogram, stages, synth

SR = 22050


def parts(changes, seconds, seed=0):
    """A song of stationary parts that differ in timbre, changing at `changes` (s): a low tone,
    band noise, a high chord, again the low tone... Returns the samples."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    edges = [0.0, *changes, seconds]
    x = np.zeros_like(t)
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        m = (t >= a) & (t < b)
        kind = k % 3
        if kind == 0:
            x[m] = np.sin(2 * np.pi * 196 * t[m]) + 0.5 * np.sin(2 * np.pi * 392 * t[m])
        elif kind == 1:
            x[m] = np.convolve(rng.standard_normal(m.sum()), np.ones(8) / 8, mode="same")
        else:
            x[m] = sum(np.sin(2 * np.pi * f * t[m]) for f in (880, 1109, 1319)) / 3
    return x + 0.01 * rng.standard_normal(len(x))


def features(x):
    _, T, S = spectrogram.magnitude_spectrogram(x, SR)
    return sections.spectrogram_features(S), T


def test_known_changes_are_found_within_a_second_and_nothing_else():
    truth = [14.0, 31.5, 47.0]
    found = sections.boundaries(*features(parts(truth, 62.0)))
    assert sections.hit_rate(found, truth, tolerance=1.0) == (1.0, 1.0), found


def test_a_song_that_repeats_one_bar_has_no_sections():
    x = np.tile(synth.bar(SR), 24)                        # 48 s of the same bar
    assert len(sections.boundaries(*features(x))) == 0


def test_a_synthesised_song_s_section_changes_are_found():
    x, truth = synth.song(4, 90.0, sr=SR, return_sections=True)
    assert len(truth) >= 2
    recall, precision = sections.hit_rate(sections.boundaries(*features(x)), truth, tolerance=1.0)
    assert recall >= 2 / 3 and precision == 1.0


def test_hit_rate_matches_one_to_one_within_the_tolerance():
    assert sections.hit_rate([10.0, 20.5, 40.0], [10.4, 20.0, 30.0], tolerance=1.0) == (2 / 3, 2 / 3)
    assert sections.hit_rate([10.0, 10.2], [10.0], tolerance=1.0) == (1.0, 0.5)   # one true change, one hit
    assert sections.hit_rate([12.0], [10.0], tolerance=1.0) == (0.0, 0.0)
    recall, precision = sections.hit_rate([], [10.0])
    assert recall == 0.0 and np.isnan(precision)


def test_the_kernel_is_a_tapered_checkerboard():
    K = sections.checkerboard(4)
    assert K.shape == (8, 8) and np.isclose(np.abs(K).sum(), 1.0)
    assert K[0, 0] > 0 and K[0, -1] < 0 and K[3, 3] > K[0, 0]          # same side +, across -, centre heaviest
    np.testing.assert_allclose(K, K.T)


def test_boundaries_keep_their_distance_from_each_other_and_the_ends():
    curve = np.array([0, 5, 0, 4, 0, 0, 3, 0, 0, 6.0])
    times = np.arange(10.0)
    np.testing.assert_allclose(sections.peaks(curve, times, min_gap_seconds=2.0, threshold=0.1), [3.0, 6.0])
    assert len(sections.peaks(curve / 1000, times, min_gap_seconds=2.0, threshold=0.1)) == 0   # below the floor


@pytest.mark.parametrize("call, message", [
    (lambda: sections.pooled(np.zeros((5, 2)), np.arange(4.0)), "t"),
    (lambda: sections.pooled(np.zeros((3, 2)), np.array([0, 2, 1.0])), "increasing"),
    (lambda: sections.boundaries(np.zeros((5, 2)), np.arange(5.0), kernel_seconds=0), "kernel_seconds"),
    (lambda: sections.checkerboard(0), "half"),
    (lambda: sections.peaks(np.zeros(3), np.arange(3.0), threshold=2), "threshold"),
    (lambda: sections.spectrogram_features(-np.ones((3, 4))), "S must be"),
])
def test_bad_input_names_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_pictures_take_the_found_sections_unless_told_otherwise():
    truth = [14.0, 31.5, 47.0]
    F, T, S = spectrogram.magnitude_spectrogram(parts(truth, 62.0), SR)
    emb = {"t_end": np.array([61.0]), "Z": np.zeros((3, 3)), "t_center": np.arange(3.0)}
    found = stages.section_edges(emb, config.Embedding(), spec=(F, T, S))
    assert found[0] == 0.0 and found[-1] == 61.0 and sections.hit_rate(found[1:-1], truth) == (1.0, 1.0)
    given = stages.section_edges(emb, config.Embedding(sections="20,40"), spec=(F, T, S))
    np.testing.assert_allclose(given, [0, 20, 40, 61])
    blocks = stages.section_edges(emb, config.Embedding(find_sections=False), spec=(F, T, S))
    np.testing.assert_allclose(blocks, [0, 30, 60, 61])
    assert stages.section_edges(emb, config.Embedding(find_sections=False, section_seconds=0), spec=(F, T, S)) is None
