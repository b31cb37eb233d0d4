"""The bundled ffmpeg: finding it, running it, streaming through it, reading its log.

Every ffmpeg this project runs is the binary that the imageio-ffmpeg wheel
ships (`exe`). Each caller spells out its own arguments; this module puts the
executable and the standard leading flags in front of them:

* QUIET (``-nostdin -v error``, `command`): a command whose only output worth
  reading is its errors. Run to its end (`run`, `call`), a failure becomes
  one line with ffmpeg's last word (`failure`); fed frames through a pipe, it
  is a `writer`.
* LOGGED (``-nostdin -hide_banner -loglevel repeat+level+info``,
  `logged_command`): a decoder whose log is read (what the input declares,
  the errors it met), streaming what it decodes through a pipe (`reader`);
  `input_part`, `errors`, `strip_level` and `declared_duration` read that log.
"""
import re
import subprocess

from dae.errors import UserError

QUIET = ("-nostdin", "-v", "error")
LOGGED = ("-nostdin", "-hide_banner", "-loglevel", "repeat+level+info")

_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


def exe():
    """The path of the ffmpeg binary that the imageio-ffmpeg wheel ships."""
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def command(*args):
    """An ffmpeg command line: the executable, QUIET, then `args`."""
    return [exe(), *QUIET, *args]


def logged_command(*args):
    """An ffmpeg command line whose log is read: the executable, LOGGED, then `args`."""
    return [exe(), *LOGGED, *args]


# ---------------------------------------------------------------- running it

def last_line(stderr):
    """ffmpeg's last word: the last line of what it wrote on stderr, or 'no message'."""
    return (stderr.strip().splitlines() or ["no message"])[-1]


def failure(doing, stderr, advice=""):
    """The one-line UserError for an ffmpeg that failed at `doing` (e.g. 'write the video'):
    'ffmpeg could not <doing> (<its last line>)<advice>'."""
    return UserError(f"ffmpeg could not {doing} ({last_line(stderr)}){advice}")


def call(cmd, input=None):
    """Run `cmd` to its end, `input` (bytes) on its standard input, its output captured;
    returns (exit status, what it wrote on stderr, as text)."""
    proc = subprocess.run(cmd, input=input, capture_output=True)
    return proc.returncode, proc.stderr.decode(errors="replace")


def run(cmd, doing, advice=""):
    """Run `cmd` to its end; a failure is the one-line UserError `failure(doing, ..., advice)`."""
    code, stderr = call(cmd)
    if code != 0:
        raise failure(doing, stderr, advice)


def reader(cmd, log_file):
    """Start `cmd` (a `logged_command`) writing what it decodes to a pipe (``.stdout``) and its
    log to `log_file`; nothing on its standard input."""
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_file)


def writer(cmd):
    """Start `cmd` (a `command`) reading from a pipe (``.stdin``), its stderr captured (``.stderr``),
    in a session of its own, so that Ctrl-C reaches this process and not ffmpeg."""
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


# ---------------------------------------------------------------- reading its log

def input_part(log):
    """The lines of ffmpeg's log that describe the input file (before the output's)."""
    for i, line in enumerate(log):
        if "Stream mapping" in line or "Output #" in line:
            return log[:i]
    return log


def strip_level(line):
    """An ffmpeg log line without its [context @ 0x...] and [level] prefixes, shortened."""
    text = re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip()
    return text[:120]


def errors(log):
    """The error lines of a log (level error or fatal), each `strip_level`ed."""
    return [strip_level(l) for l in log if "[error]" in l or "[fatal]" in l]


def declared_duration(log):
    """The input's duration in seconds from ffmpeg's 'Duration: HH:MM:SS.ss' line, or None."""
    for line in log:
        m = _DURATION.search(line)
        if m:
            h, mnt, sec = m.groups()
            return int(h) * 3600 + int(mnt) * 60 + float(sec)
    return None
