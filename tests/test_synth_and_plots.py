"""The demo song's structure, and the 3-D views of an embedding."""
import numpy as np

from dae import plotting, synth
from dae.spectrogram import magnitude_spectrogram


def test_demo_song_is_deterministic_and_about_40_seconds():
    a, b = synth.demo_song(), synth.demo_song()
    np.testing.assert_array_equal(a, b)
    assert abs(a.size / synth.SR - 40.0) < 0.5 and np.abs(a).max() <= 0.9 + 1e-12


def test_demo_song_has_two_sections_that_differ_in_instrumentation():
    F, T, S = magnitude_spectrogram(synth.demo_song(), synth.SR)
    mid = (F > 500) & (F < 1000)          # where the chords sit, above the bass
    energy = S[mid].mean(axis=0)
    a = energy[(T > 1) & (T < 15)].mean()  # drums and bass
    b = energy[(T > 17) & (T < 31)].mean()  # chords added
    a2 = energy[(T > 33) & (T < 39)].mean()
    assert b > 3 * a and b > 3 * a2


def test_demo_song_repeats_its_bar():
    x = synth.demo_song()
    bar = 2 * synth.SR
    np.testing.assert_allclose(x[2 * bar:3 * bar], x[4 * bar:5 * bar], atol=1e-12)   # within section A
    assert np.abs(x[2 * bar:3 * bar] - x[10 * bar:11 * bar]).max() > 0.1              # A differs from B


def test_loop_is_strictly_periodic():
    x = synth.loop(1.5, 4, sr=8000)
    n = 12000
    np.testing.assert_array_equal(x[:n], x[n:2 * n])


def test_projection_of_a_high_dimensional_path_keeps_its_3d_shape():
    rng = np.random.default_rng(0)
    P = rng.standard_normal((200, 3)) * [5, 2, 1]
    basis, _ = np.linalg.qr(rng.standard_normal((12, 3)))
    Z = P @ basis.T + 7.0                             # a 3-D path placed in 12-D
    Q, labels, note = plotting.project3(Z)
    d = lambda A: np.linalg.norm(A[:, None] - A[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(Q), d(P), atol=1e-9)  # an isometry: distances are kept
    assert "principal components" in note and "12-D" in note and "100%" in note
    assert labels[0].startswith("PC1")


def test_small_latent_sizes_are_shown_as_they_are():
    Z = np.arange(12.0).reshape(6, 2)
    Q, labels, note = plotting.project3(Z)
    np.testing.assert_array_equal(Q[:, :2], Z)
    assert not Q[:, 2].any()                                   # flat, and labelled as the axis it is not
    assert note == "" and labels == ["z1", "z2", "(none: the path is 2-D)"]


def test_trajectory_pictures_are_written(tmp_path):
    t = np.linspace(0, 10, 300)
    Z = np.stack([np.cos(t), np.sin(t), 0.1 * t] + [np.sin(k * t) for k in range(9)], 1)
    plotting.trajectory_png(tmp_path / "p.png", Z, t, "spiral")
    plotting.trajectory_html(tmp_path / "p.html", Z, t, "spiral", tmp_path / "plotly.min.js")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    html = (tmp_path / "p.html").read_text()
    assert "principal components of the 12-D embedding" in html and "t = %{customdata:.2f} s" in html
