"""Reading audio: every encoding and layout reads back to the samples written."""
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
from scipy.io import wavfile

from dae import UserError
from dae.audio import read_audio, to_float, write_wav

ENCODINGS = {  # encoding -> (integer full scale or None for float)
    "uint8": 128, "int16": 2 ** 15, "int24": 2 ** 23, "int32": 2 ** 31, "float32": None, "float64": None}


def quantised(x, encoding):
    """What a file of `encoding` can hold for x: the exact value read back should equal."""
    full = ENCODINGS[encoding]
    if full is None:
        return x.astype(np.float32).astype(np.float64) if encoding == "float32" else x
    lo = -full
    return np.clip(np.round(x * full), lo, full - 1) / full


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("channels", [1, 2])
def test_every_encoding_reads_back_the_samples_written(tmp_path, encoding, channels):
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.95, 0.95, (4000, channels))
    path = tmp_path / f"{encoding}.wav"
    write_wav(path, x if channels > 1 else x[:, 0], 32000, encoding, extra_chunk=True)
    y, sr = read_audio(path)
    assert sr == 32000
    expected = quantised(x, encoding).mean(axis=1)
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("sr", [8000, 11025, 44100, 48000, 96000])
def test_any_sample_rate_is_kept(tmp_path, sr):
    x = np.sin(2 * np.pi * 440 * np.arange(sr // 10) / sr) * 0.5
    wavfile.write(tmp_path / "a.wav", sr, (x * 32767).astype(np.int16))  # an independent writer
    y, got = read_audio(tmp_path / "a.wav")
    assert got == sr
    np.testing.assert_array_equal(y, (x * 32767).astype(np.int16) / 32768.0)


def test_stereo_full_scale_mixes_without_overflow(tmp_path):
    both = np.full((100, 2), 32767, dtype=np.int16)
    wavfile.write(tmp_path / "loud.wav", 44100, both)
    y, _ = read_audio(tmp_path / "loud.wav")
    np.testing.assert_array_equal(y, np.full(100, 32767 / 32768))


def test_8bit_is_unsigned_with_silence_at_128():
    np.testing.assert_array_equal(to_float(np.array([0, 128, 255], dtype=np.uint8)), [-1.0, 0.0, 127 / 128])


def _ffmpeg(*args):
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def test_flac_decodes_exactly_through_bundled_ffmpeg(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.uniform(-0.9, 0.9, (22050, 2))
    write_wav(tmp_path / "s.wav", x, 22050, "int16")
    _ffmpeg("-i", tmp_path / "s.wav", tmp_path / "s.flac")
    y, sr = read_audio(tmp_path / "s.flac")
    assert sr == 22050
    np.testing.assert_allclose(y, quantised(x, "int16").mean(axis=1), atol=1e-7)


@pytest.mark.parametrize("ext", ["mp3", "ogg"])
def test_lossy_formats_decode_to_the_same_tone(tmp_path, ext):
    t = np.arange(44100) / 44100
    x = 0.5 * np.sin(2 * np.pi * 440 * t)
    write_wav(tmp_path / "t.wav", x, 44100, "int16")
    codec = ["-c:a", "libvorbis"] if ext == "ogg" else []
    try:
        _ffmpeg("-i", tmp_path / "t.wav", *codec, tmp_path / f"t.{ext}")
    except subprocess.CalledProcessError:
        pytest.skip(f"the bundled ffmpeg has no {ext} encoder")
    y, sr = read_audio(tmp_path / f"t.{ext}")
    assert sr == 44100
    spectrum = np.abs(np.fft.rfft(y[:44100] if y.size >= 44100 else np.pad(y, (0, 44100 - y.size))))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 Hz bins


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_audio(tmp_path / "nope.wav")


@pytest.mark.parametrize("content, name", [(b"RIFF\x10\x00\x00\x00WAVEjunkjunk", "broken.wav"),
                                           (b"this is not audio at all\n" * 50, "notes.mp3"),
                                           (bytes(range(256)) * 40, "noise.bin")])
def test_corrupt_or_non_audio_file_is_a_clear_error(tmp_path, content, name):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(UserError) as e:
        read_audio(tmp_path / name)
    assert "\n" not in str(e.value) and name in str(e.value)


def test_ffmpeg_written_24bit_extensible_wav_reads_back(tmp_path):
    rng = np.random.default_rng(9)
    x = rng.uniform(-0.9, 0.9, (3000, 2))
    write_wav(tmp_path / "f.wav", x, 48000, "float32")
    _ffmpeg("-i", tmp_path / "f.wav", "-c:a", "pcm_s24le", "-rf64", "auto", tmp_path / "s24.wav")
    y, sr = read_audio(tmp_path / "s24.wav")
    assert sr == 48000
    np.testing.assert_allclose(y, x.astype(np.float32).mean(axis=1), atol=2 ** -23)


def test_float_wav_with_nan_is_a_clear_error(tmp_path):
    x = np.zeros(100)
    x[50] = np.nan
    write_wav(tmp_path / "nan.wav", x, 8000, "float32")
    with pytest.raises(UserError, match="NaN"):
        read_audio(tmp_path / "nan.wav")
