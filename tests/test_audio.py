"""Reading audio: every encoding and layout reads back to the samples written."""
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
from scipy.io import wavfile

from dae import UserError, provenance
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


# ---------------------------------------------------------------- damaged files

def _tone_wav(path, seconds=2.0, sr=22050, f=440.0):
    t = np.arange(int(seconds * sr)) / sr
    write_wav(path, 0.5 * np.sin(2 * np.pi * f * t), sr, "int16")
    return path


def _one_line(e):
    text = str(e.value)
    assert "\n" not in text
    return text


def test_a_wav_cut_to_60_percent_is_refused(tmp_path):
    """Before: scipy's 'Reached EOF prematurely' warning was hidden and 60% of the song was used."""
    good = _tone_wav(tmp_path / "good.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good[:int(len(good) * 0.6)])
    with pytest.raises(UserError) as e:
        read_audio(cut)
    assert "cut.wav is damaged" in _one_line(e) and "88,200 bytes" in str(e.value) and "(60%)" in str(e.value)


def test_a_header_that_claims_more_data_than_there_is_is_refused(tmp_path):
    """The RIFF size agrees with the file, only the data chunk lies: scipy says nothing at all."""
    raw = bytearray(_tone_wav(tmp_path / "good.wav").read_bytes())
    at = raw.index(b"data") + 4
    declared = int.from_bytes(raw[at:at + 4], "little")
    raw[at:at + 4] = (declared + 10_000).to_bytes(4, "little")
    (tmp_path / "liar.wav").write_bytes(bytes(raw))
    with pytest.raises(UserError, match=f"promises {declared + 10_000:,} bytes of audio but only {declared:,}") as e:
        read_audio(tmp_path / "liar.wav")
    _one_line(e)


def test_a_complete_wav_with_a_chunk_after_the_data_is_fine(tmp_path):
    raw = _tone_wav(tmp_path / "good.wav").read_bytes()
    tail = b"LIST" + (4).to_bytes(4, "little") + b"INFO"
    body = raw[8:] + tail
    (tmp_path / "tail.wav").write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    y, sr = read_audio(tmp_path / "tail.wav")
    assert sr == 22050 and len(y) == 44100


def _mp3_with_garbage(tmp_path, seconds=10.0):
    src = _tone_wav(tmp_path / "t.wav", seconds, 44100)
    _ffmpeg("-i", src, "-b:a", "64k", tmp_path / "t.mp3")
    b = (tmp_path / "t.mp3").read_bytes()
    junk = np.random.default_rng(0).integers(0, 256, len(b) // 4, dtype=np.uint8).tobytes()
    bad = tmp_path / "g.mp3"
    bad.write_bytes(b[:len(b) // 3] + junk + b[len(b) // 3 + len(junk):])
    return bad


def test_a_partly_decodable_mp3_is_read_with_a_warning_saying_how_much(tmp_path, capsys):
    """Before: 7.5 s of 10 s decoded and nothing said. Now decoded, with one warning line."""
    bad = _mp3_with_garbage(tmp_path)
    capsys.readouterr()
    y, sr = read_audio(bad)
    decoded = len(y) / sr
    assert 5.0 < decoded < 9.0
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(err) == 1, err
    assert err[0].startswith(f"warning: {bad} is damaged: decoded {decoded:.2f} s of the 10.00 s it declares")
    assert "ffmpeg:" in err[0] and "replace the file" in err[0]


# ---------------------------------------------------------------- every container ffmpeg decodes

FORMATS = {  # suffix -> extra ffmpeg output arguments
    "m4a": [], "opus": [], "aiff": [], "aac": [], "wma": [], "mp3": [], "ogg": ["-c:a", "libvorbis"],
    "flac": [], "mp4": ["-c:v", "libx264"], "mkv": [], "webm": [], "mov": [], "avi": [],
}
VIDEO = {"mp4", "mkv", "webm", "mov", "avi"}


def _encode(tmp_path, ext, seconds=1.0):
    src = _tone_wav(tmp_path / "src.wav", seconds, 44100)
    out = tmp_path / f"clip.{ext}"
    picture = ["-f", "lavfi", "-i", f"color=c=blue:s=64x48:r=10:d={seconds}"] if ext in VIDEO else []
    try:
        _ffmpeg("-i", src, *picture, *FORMATS[ext], "-shortest", out)
    except subprocess.CalledProcessError:
        pytest.skip(f"the bundled ffmpeg cannot write .{ext}")
    return out


@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_every_container_decodes_to_the_tone_without_a_warning(tmp_path, capsys, ext):
    from dae.layout import Paths, song_name
    clip = _encode(tmp_path, ext)
    capsys.readouterr()
    y, sr = read_audio(clip)
    assert capsys.readouterr().err == ""                     # a sound file raises no false alarm
    assert sr == (48000 if ext in ("opus", "webm") else 44100) and abs(len(y) / sr - 1.0) < 0.1  # opus: 48 kHz
    spectrum = np.abs(np.fft.rfft(y[:sr // 2], n=sr))        # 1 Hz bins
    assert abs(np.argmax(spectrum) - 440) <= 2
    # accepted by file name (before: "not a usable name"), wherever it is
    assert song_name(clip) == "clip" and song_name(f"elsewhere/clip.{ext.upper()}") == "clip"
    assert Paths(clip, tmp_path / "data").audio_candidates(clip) == [clip]


def test_a_file_that_exists_is_read_whatever_its_suffix(tmp_path):
    from dae.layout import Paths, song_name
    clip = _encode(tmp_path, "m4a")
    odd = tmp_path / "take 1.recording"
    odd.write_bytes(clip.read_bytes())
    assert song_name(odd) == "take 1"
    assert Paths(odd, tmp_path / "data").audio_candidates(odd) == [odd]
    y, sr = read_audio(odd)
    assert abs(len(y) / sr - 1.0) < 0.1


def test_a_video_without_sound_is_one_line(tmp_path):
    silent_film = tmp_path / "film.mp4"
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x48:r=10:d=1", silent_film)
    with pytest.raises(UserError, match="film.mp4 has no sound track") as e:
        read_audio(silent_film)
    _one_line(e)


def test_suffix_list_covers_what_the_bundled_ffmpeg_names(tmp_path):
    """The extensions the bundled ffmpeg's demuxers claim for audio and video containers."""
    from dae.layout import AUDIO_SUFFIXES
    claimed = set()
    for demuxer in ("mov", "matroska,webm", "ogg", "mp3", "flac", "aac", "avi", "flv", "ac3", "eac3", "dts",
                    "tta", "ape", "mpc", "truehd", "mlp", "gsm"):
        out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-h", f"demuxer={demuxer}"],
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            if "extensions:" in line:
                claimed |= {"." + e.strip() for e in line.split("extensions:")[1].strip(" .").split(",")}
    pictures_and_subtitles = {".avif", ".heic", ".heif", ".mks"}
    assert len(claimed) > 20
    assert claimed - pictures_and_subtitles - set(AUDIO_SUFFIXES) == set()


# ---------------------------------------------------------------- one folder per song

def _paths(data, song):
    from dae.layout import Paths
    return Paths(song, data, data.parent / "outputs")


def test_two_different_files_for_one_name_are_refused(tmp_path):
    from dae import dataset
    data = tmp_path / "data"
    data.mkdir()
    _tone_wav(data / "song.wav", f=440.0)
    assert dataset.find_audio("song", _paths(data, "song")) == data / "song.wav"
    _ffmpeg("-i", _tone_wav(tmp_path / "other.wav", f=660.0), data / "song.flac")
    with pytest.raises(UserError, match="song 'song' has 2 different audio files") as e:
        dataset.find_audio("song", _paths(data, "song"))
    assert "song.wav, song.flac" in _one_line(e) and "--song" in str(e.value)
    (data / "song.flac").write_bytes((data / "song.wav").read_bytes())       # the same bytes twice: no question
    assert dataset.find_audio("song", _paths(data, "song")) == data / "song.wav"


def test_a_name_finds_any_container_in_the_data_folder(tmp_path):
    from dae import dataset
    data = tmp_path / "data"
    data.mkdir()
    clip = _encode(tmp_path, "m4a")
    (data / "tune.M4A").write_bytes(clip.read_bytes())
    assert dataset.find_audio("tune", _paths(data, "tune")) == data / "tune.M4A"
    with pytest.raises(UserError, match="no audio found for song 'other'"):
        dataset.find_audio("other", _paths(data, "other"))


def test_same_stem_different_audio_never_shares_a_folder(tmp_path):
    """Before: a/song.wav then b/song.flac both filed under data/song/, the second overwrote the first."""
    from dae import dataset
    data = tmp_path / "data"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _tone_wav(tmp_path / "a" / "song.wav", f=440.0)
    dataset.make(first, _paths(data, first), 0.5)
    kept = {p: p.read_bytes() for p in (data / "song").rglob("*") if p.is_file()}
    second = _tone_wav(tmp_path / "b" / "song.wav", f=660.0)
    with pytest.raises(UserError) as e:
        dataset.make(second, _paths(data, second), 0.5)
    line = _one_line(e)
    assert f"already holds the song {first}" in line and "rename song.wav" in line and "remove" in line
    assert {p: p.read_bytes() for p in (data / "song").rglob("*") if p.is_file()} == kept
    # a copy of the same song is the same song; an edited song at the same path is remade
    same = tmp_path / "b" / "song.wav"
    same.write_bytes(first.read_bytes())
    dataset.make(same, _paths(data, same), 0.5)
    _tone_wav(same, f=550.0)
    meta = dataset.make(same, _paths(data, same), 0.5)
    assert meta["source"] == str(same) and meta["source_sha256"] != provenance.file_hash(first)


def test_save_dataset_takes_an_m4a_and_gives_one_line_for_damage_or_a_name_clash(tmp_path):
    """Through the script: before, `--song x.m4a` in a folder was 'not a usable name' and a cut WAV passed."""
    import json
    from conftest import run_script
    dirs = ("--data-dir", tmp_path / "d", "--output-dir", tmp_path / "o", "--plot", "false")
    clip = _encode(tmp_path, "m4a", seconds=3.0)
    p = run_script("save_dataset.py", "--song", clip, *dirs, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    side = json.loads((tmp_path / "d" / "clip" / "spectrogram.npz.json").read_text())
    assert side["source"] == str(clip) and abs(side["duration_s"] - 3.0) < 0.1
    kept = (tmp_path / "d" / "clip" / "spectrogram.npz").read_bytes()

    (tmp_path / "other").mkdir()
    cut = tmp_path / "cut.wav"
    good = _tone_wav(tmp_path / "whole.wav", 3.0).read_bytes()
    cut.write_bytes(good[:int(len(good) * 0.6)])
    for song, words in ((cut, "is damaged"), (_tone_wav(tmp_path / "other" / "clip.wav", 3.0), "already holds")):
        p = run_script("save_dataset.py", "--song", song, *dirs, timeout=120)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert p.returncode == 1 and len(lines) == 1 and words in lines[0], p.stderr
    assert (tmp_path / "d" / "clip" / "spectrogram.npz").read_bytes() == kept
    assert not (tmp_path / "d" / "cut" / "spectrogram.npz").exists()
