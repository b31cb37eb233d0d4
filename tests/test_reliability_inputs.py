"""Bad inputs from the reliability issue: one line on stderr, exit status 1, nothing on disk lost or half-written;
and legal inputs that used to fail: huge finite samples, a whole-number learning rate, a long song's memory."""
import struct
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
from scipy import signal
from scipy.io import wavfile

from conftest import SR, changing_song, common, run_script, write_song
from dae import audio, cli, dataset, layout
from dae.errors import UserError
from dae.spectrogram import block_spectrogram, magnitude_spectrogram


def one_line(p):
    """The single line a failed script printed on stderr (exit status 1)."""
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 1 and len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    return lines[0]


def files_under(*folders):
    """{path: bytes} of every file under the folders (that exist)."""
    return {f: f.read_bytes() for d in folders if d.exists() for f in sorted(d.rglob("*")) if f.is_file()}


def pcm16_wav(path, samples, sr):
    """A mono 16-bit PCM WAV written by hand, whatever `sr` says (no writer checks it)."""
    data = np.asarray(samples, dtype="<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, sr, sr * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


# ---------------------------------------------------------------- 1a. a header with sample rate 0

def test_a_wav_header_with_sample_rate_0_is_one_line(tmp_path):
    """Before: ValueError traceback from the spectrogram ('sr must be a positive sample rate')."""
    song = pcm16_wav(tmp_path / "zero.wav", 10000 * np.sin(0.1 * np.arange(8192)), 0)
    data, out = tmp_path / "d", tmp_path / "o"
    line = one_line(run_script("save_dataset.py", "--song", song, *common(data, out), timeout=120))
    assert "zero.wav" in line and "sample rate of 0 Hz" in line and "re-export" in line
    assert not (data / "zero" / "spectrogram.npz").exists() and not (out / "zero").exists()
    with pytest.raises(UserError, match="sample rate of 0 Hz"):
        audio.read_audio(song)


# ---------------------------------------------------------------- 1b. a float setting given a whole number

def test_a_float_setting_given_a_whole_number_is_a_float():
    """Before: `--learning-rate 1` gave the int 1, which Keras refuses with a traceback."""
    from dae import config
    ns = {"__file__": "script.py", "__doc__": "A script.", "LEARNING_RATE": 1e-3, "ALPHA": 0.001, "EPOCHS": 0}
    values = cli.parse(config.Training, ns, argv=["--learning-rate", "1", "--alpha", "10", "--epochs", "2"])
    assert values.learning_rate == 1.0 and type(values.learning_rate) is float
    assert values.alpha == 10.0 and type(values.alpha) is float
    assert values.epochs == 2 and type(values.epochs) is int              # a whole-number setting stays whole
    assert type(config.Training(learning_rate=1).learning_rate) is float  # a library caller's 1 too


def test_learning_rate_1_trains(tmp_path):
    song = write_song(tmp_path / "lr.wav", changing_song(6.0))
    data, out = tmp_path / "d", tmp_path / "o"
    assert run_script("save_dataset.py", "--song", song, *common(data, out), "--plot", "false").returncode == 0
    p = run_script("train_model.py", "--song", song, *common(data, out), "--epochs", 1, "--verbose", 0,
                   "--learning-rate", 1)
    assert p.returncode == 0, p.stderr
    assert "final (epoch 1" in p.stdout and "Traceback" not in p.stderr


# ---------------------------------------------------------------- 1c. an OSError escaping a stage

def test_an_output_dir_that_is_a_file_is_one_line(tmp_path):
    """Before: NotADirectoryError traceback when the picture's folder was made."""
    song = write_song(tmp_path / "tune.wav", changing_song(3.0))
    data, plain = tmp_path / "d", tmp_path / "plain"
    plain.write_text("not a folder\n")
    line = one_line(run_script("save_dataset.py", "--song", song, *common(data, plain), timeout=120))
    assert str(plain) in line
    assert plain.read_text() == "not a folder\n"                            # nothing lost
    assert not [f for f in files_under(data) if f.name.startswith(".tmp")]   # nothing half-written


def test_a_picture_path_that_is_a_folder_is_one_line_naming_it_and_the_reason(tmp_path):
    """Before: IsADirectoryError traceback from the rename of the finished picture."""
    song = write_song(tmp_path / "tune.wav", changing_song(3.0))
    data, out = tmp_path / "d", tmp_path / "o"
    png = out / "tune" / "spectrogram.png"
    png.mkdir(parents=True)
    line = one_line(run_script("save_dataset.py", "--song", song, *common(data, out), timeout=120))
    assert str(png) in line and "is a folder where a file should be" in line and "run the same command again" in line
    assert png.is_dir() and not [f for f in files_under(data, out) if f.name.startswith(".tmp")]
    with np.load(data / "tune" / "spectrogram.npz") as z:                    # what was finished is whole
        assert z["S"].shape[0] == 187


def test_cli_run_turns_any_os_error_into_one_line(capsys):
    def main():
        raise PermissionError(13, "Permission denied", "/somewhere/locked/file.npz")
    with pytest.raises(SystemExit) as e:
        cli.run(main)
    assert e.value.code == 1
    lines = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(lines) == 1 and "/somewhere/locked/file.npz" in lines[0] and "Permission denied" in lines[0]


# ---------------------------------------------------------------- 2. huge but finite samples

def test_huge_finite_samples_give_the_exact_finite_spectrogram_without_warnings(tmp_path):
    """Before: RuntimeWarnings (overflow) and a mostly NaN/inf spectrogram saved; refused only at training.

    A legal float64 file peaking near 1.6e308 is the same sound as one peaking at 0.9 scaled by 2**1024:
    its spectrogram is that one's times 2**1024, exactly (power-of-two scaling rounds nothing)."""
    rng = np.random.default_rng(4)
    small = np.stack([changing_song(3.0), rng.uniform(-0.9, 0.9, int(3.0 * SR))], axis=1)
    song = write_song(tmp_path / "loud.wav", np.ldexp(small, 1024), encoding="float64")
    assert 1.5e308 < np.abs(wavfile.read(song)[1]).max() < np.finfo(np.float64).max
    data, out = tmp_path / "d", tmp_path / "o"
    p = run_script("save_dataset.py", "--song", song, *common(data, out), timeout=120)
    assert p.returncode == 0 and p.stderr == "", p.stderr                   # no RuntimeWarning
    with np.load(data / "loud" / "spectrogram.npz") as z:
        S = z["S"]
    _, _, S_small = magnitude_spectrogram(small.mean(axis=1), SR)
    assert np.all(np.isfinite(S)) and np.array_equal(S, np.ldexp(S_small, 1024))


def test_the_largest_float_at_the_nyquist_frequency_is_the_worst_case_and_still_finite(tmp_path):
    """No column's magnitude exceeds its peak sample (the bound is reached only at the Nyquist frequency),
    so after the exact scaling the spectrogram of any finite samples is finite: here it is the largest float."""
    top = np.finfo(np.float64).max
    song = write_song(tmp_path / "edge.wav", top * (-1.0) ** np.arange(8192), sr=8000, encoding="float64")
    data, out = tmp_path / "d", tmp_path / "o"
    p = run_script("save_dataset.py", "--song", song, *common(data, out), "--plot", "false", timeout=120)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    with np.load(data / "edge" / "spectrogram.npz") as z:
        S = z["S"]
    assert np.all(np.isfinite(S)) and S[-1].min() == pytest.approx(top, rel=1e-12)   # the 4 kHz bin


# ---------------------------------------------------------------- 3. % in a setting's comment

def test_help_shows_a_percent_in_a_comment_as_written():
    """Before: argparse read '70% s' as a format and garbled the ORDER entry."""
    p = run_script("train_model.py", "--help", timeout=120)
    assert p.returncode == 0, p.stderr
    text = " ".join(p.stdout.split())                                      # help lines wrap anywhere
    assert "the original's 70% shuffle buffer over chunks; \"tiled\": random-phase tiling each epoch" in text


# ---------------------------------------------------------------- 4. HISTORY's bound, stated once

def test_history_below_3_is_refused_at_the_door(tmp_path):
    """Before: --help said [1..] and 1 or 2 were refused by training, after TensorFlow had loaded."""
    data, out = tmp_path / "d", tmp_path / "o"
    line = one_line(run_script("train_model.py", "--history", 2, *common(data, out), timeout=120))
    assert "HISTORY=2 must be at least 3" in line
    assert not data.exists() and not out.exists()
    text = " ".join(run_script("train_model.py", "--help", timeout=120).stdout.split())
    assert "[3..100000]" in text.split("--history INT")[-1].split(" --")[0]   # --history's own entry


def test_a_learning_rate_of_0_is_refused_at_the_door(tmp_path):
    """Before: 0 was in LEARNING_RATE's range [0..10] and refused only by training, after TensorFlow had loaded."""
    data, out = tmp_path / "d", tmp_path / "o"
    line = one_line(run_script("train_model.py", "--learning-rate", 0, *common(data, out), timeout=120))
    assert "LEARNING_RATE=0 must be more than 0" in line
    assert not data.exists() and not out.exists()


def test_train_reads_its_history_bound_from_the_one_config(monkeypatch, tmp_path):
    from dae import config, training
    common_args = dict(latent_dim=3, window_seconds=0.5, alpha=0.001, beta=1.0, gamma=0.0, delta=0.0, epochs=1,
                       chunk_samples=1, chunks_per_batch=8, learning_rate=1e-3, seed=0)
    frames = np.zeros((200, 8), np.float32)
    with pytest.raises(UserError, match="history=2 must be at least 3"):      # the library's own name
        training.train(None, frames, 12, SR, "x", history=2, **common_args)
    line = one_line(run_script("train_model.py", "--history", 2, *common(tmp_path / "d", tmp_path / "o")))
    assert "HISTORY=2 must be at least 3" in line                           # the same bound, the user's name
    field = config.Training.__dataclass_fields__["history"]
    monkeypatch.setattr(field, "metadata", {**field.metadata, "least": 5})   # the one place it is stated
    with pytest.raises(UserError, match="history=4 must be at least 5"):
        training.train(None, frames, 12, SR, "x", history=4, **common_args)



# ---------------------------------------------------------------- 5. stage 1 a block at a time

def whole_array_spectrogram(x, sr):
    """The original's call on the whole mono signal: F, T, S cropped to 4 kHz."""
    F, T, S = signal.spectrogram(x, sr, window=signal.windows.tukey(1024, alpha=0.4), noverlap=0,
                                 scaling="spectrum", mode="magnitude")
    n = int(np.argmin(np.abs(F - 4000))) + 1
    return F[:n], T, S[:n]


@pytest.mark.parametrize("suffix", ["wav", "flac"])
def test_tiny_blocks_give_the_whole_arrays_spectrogram_bit_for_bit(tmp_path, suffix):
    """WAV read here and FLAC streamed from ffmpeg, in blocks of 1000 frames (not whole columns)."""
    rng = np.random.default_rng(2)
    x = np.stack([changing_song(3.0), rng.uniform(-0.9, 0.9, int(3.0 * SR))], axis=1)
    song = write_song(tmp_path / "s.wav", x)
    if suffix == "flac":
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(song),
                        str(tmp_path / "s.flac")], check=True)
        song = tmp_path / "s.flac"
    sr, ints = wavfile.read(tmp_path / "s.wav")
    expected = whole_array_spectrogram((ints / 32768.0).mean(axis=1), sr)    # lossless: the same samples
    with audio.open_audio(song, block_frames=1000) as (rate, blocks):
        sizes = []
        got = block_spectrogram((sizes.append(b.size) or b for b in blocks), rate)
    assert rate == sr and max(sizes) == 1000 and len(sizes) == -(-len(ints) // 1000)
    for a, b in zip(got, expected):
        assert np.array_equal(a, b)


def test_stage_1_saves_the_whole_arrays_spectrogram(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    x = np.stack([changing_song(3.0), rng.uniform(-0.9, 0.9, int(3.0 * SR))], axis=1)
    song = write_song(tmp_path / "s.wav", x)
    monkeypatch.setattr(audio, "BLOCK_FRAMES", 3000)                        # 3 blocks, none of whole columns
    paths = layout.Paths(song, tmp_path / "d", tmp_path / "o")
    meta = dataset.make(song, paths, 0.5)
    sr, ints = wavfile.read(song)
    F, T, S = whole_array_spectrogram((ints / 32768.0).mean(axis=1), sr)
    with np.load(paths.spectrogram) as z:
        assert np.array_equal(z["S"], S) and np.array_equal(z["T"], T) and np.array_equal(z["F"], F)
    assert meta["duration_s"] == len(ints) / sr and meta["n_time"] == S.shape[1]
