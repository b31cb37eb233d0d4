"""Song time as people read and type it: ``2:02.5`` rather than 122.5 s or window 5266."""
import math
import re

from dae.errors import refused

_CLOCK = re.compile(r"^\s*(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d*)?|\.\d+)\s*$")


def clock(seconds, decimals=1):
    """A time in seconds as m:ss.s (h:mm:ss.s from an hour on): 122.5 -> '2:02.5', 4.56 -> '0:04.6'.

    seconds : float >= 0, finite. decimals : digits after the seconds' point (0: whole seconds).
    """
    seconds = float(seconds)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds={seconds!r} is not a time in a song (finite, >= 0)")
    scale = 10 ** decimals
    total = round(seconds * scale)                     # rounded once, so 59.96 s is 1:00.0, not 0:60.0
    whole, fraction = divmod(total, scale)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    if hours:
        text = f"{hours}:{text}"
    return text + (f".{fraction:0{decimals}d}" if decimals else "")


def parse_clock(text, name="at"):
    """Seconds from a song time typed as m:ss, h:mm:ss or plain seconds: '2:02' -> 122.0,
    '2:02.5' -> 122.5, '1:00:03' -> 3603.0, '95' -> 95.0.

    name : the setting it was given as, for the error (a SettingError naming it and the value).
    """
    m = _CLOCK.match(str(text))
    if not m:
        raise refused(name, f"={text!r} is not a song time: give m:ss (2:02), m:ss.s (2:02.5) or seconds (122)")
    first, second, secs = m.groups()
    hours, minutes = (int(first), int(second)) if second is not None else (0, int(first) if first else 0)
    if (first is not None and float(secs) >= 60) or (second is not None and minutes >= 60):
        raise refused(name, f"={text!r} is not a song time: its seconds (and minutes) must be under 60")
    return hours * 3600.0 + minutes * 60.0 + float(secs)
