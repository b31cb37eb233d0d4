"""A stage keeps its outputs only while they are up to date: the same inputs (down to the audio), the
same settings and the same code; anything else makes them again."""
from conftest import changing_song, loop_song, write_song
from dae import config, provenance, stages


def _saved(capsys, cfg):
    stages.save_dataset(cfg)
    out = capsys.readouterr().out
    return "skipped" not in out, out


def test_stage_1_skips_itself_until_its_audio_settings_picture_or_code_change(tmp_path, capsys, monkeypatch):
    song = write_song(tmp_path / "tune.wav", changing_song(4.0))
    cfg = config.Spectrogram(song=str(song), data_dir=str(tmp_path / "d"), output_dir=str(tmp_path / "o"))
    assert _saved(capsys, cfg)[0]                                          # made
    made, out = _saved(capsys, cfg)
    assert not made and out.strip() == ("save_dataset.py: spectrogram.npz up to date (same inputs, settings and "
                                         "code), skipped")
    spectrogram = tmp_path / "d" / "tune" / "spectrogram.npz"
    sha = provenance.file_hash(spectrogram)
    write_song(song, loop_song(1.0, 4))                                    # other audio at the same path
    assert _saved(capsys, cfg)[0] and provenance.file_hash(spectrogram) != sha
    assert not _saved(capsys, cfg)[0]
    assert _saved(capsys, config.Spectrogram(**{**vars(cfg), "window_seconds": 2.0}))[0]   # another window
    (tmp_path / "o" / "tune" / "spectrogram.png").unlink()                 # its picture gone
    assert _saved(capsys, config.Spectrogram(**{**vars(cfg), "window_seconds": 2.0}))[0]
    assert not _saved(capsys, config.Spectrogram(**{**vars(cfg), "window_seconds": 2.0, "plot": False}))[0]
    monkeypatch.setattr(provenance, "code_hash", lambda: "other code")    # made by another version of the code
    assert _saved(capsys, config.Spectrogram(**{**vars(cfg), "window_seconds": 2.0}))[0]
