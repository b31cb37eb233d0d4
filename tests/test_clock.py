"""Song time: m:ss shown and typed, and the window a time names."""
import numpy as np
import pytest

from conftest import run_script
from dae import config, stages
from dae.clock import clock, parse_clock
from dae.errors import SettingError


@pytest.mark.parametrize("seconds, text", [(0, "0:00.0"), (4.56, "0:04.6"), (59.96, "1:00.0"), (122.5, "2:02.5"),
                                           (3603.04, "1:00:03.0")])
def test_clock_shows_minutes_and_seconds(seconds, text):
    assert clock(seconds) == text
    assert parse_clock(text) == pytest.approx(round(seconds, 1))       # and reads back what it shows


@pytest.mark.parametrize("text, seconds", [("2:02", 122.0), ("2:02.5", 122.5), ("95", 95.0), ("1:00:03", 3603.0),
                                           (" 0:04.6 ", 4.6)])
def test_a_typed_song_time_is_read(text, seconds):
    assert parse_clock(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["2:60", "1:60:00", "x", "", "2::3", "-1", "1:2:3:4"])
def test_what_is_not_a_song_time_is_refused_naming_the_setting(text):
    with pytest.raises(SettingError) as e:
        parse_clock(text)
    assert e.value.line(user_names=True).startswith(f"AT={text!r} is not a song time")


def test_at_names_the_window_centred_nearest_that_time():
    t = 0.25 + np.arange(100) / 4.0                    # centres every 0.25 s from 0.25 s
    assert stages.index_at(t, "0:10", 0, 98) == 39     # 10.0 s is centre 39 (0.25 + 39 / 4)
    assert stages.index_at(t, "10.1", 0, 98) == 39
    assert stages.index_at(t, "0:10.2", 0, 98) == 40
    with pytest.raises(SettingError, match=r"choose one in 0:02\.5\.\.0:24\.5"):
        stages.index_at(t, "0:01", 9, 97)              # before the first start this method accepts
    with pytest.raises(SettingError):
        stages.index_at(t, "5:00", 0, 98)              # after the song


def test_a_bad_time_is_refused_at_the_door(tmp_path):
    with pytest.raises(SettingError):
        config.KnnForecast(at="2:61")
    p = run_script("forecast_knn.py", "--at", "2:61", "--data-dir", tmp_path / "d", "--output-dir", tmp_path / "o")
    assert p.returncode == 1 and p.stderr.strip() == ("error: AT='2:61' is not a song time: its seconds (and "
                                                      "minutes) must be under 60")
    assert not (tmp_path / "d").exists()
