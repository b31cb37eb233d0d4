"""A small deterministic synthesizer: drums, bass and chords with numpy.

Used for the bundled demo song and by the tests, so nothing is downloaded.
All functions return float64 mono samples at `sr` Hz.
"""
import numpy as np

SR = 44100


def _t(seconds, sr):
    return np.arange(int(round(seconds * sr))) / sr


def kick(sr=SR, seconds=0.35):
    """A pitched-down sine thump (150 -> 45 Hz)."""
    t = _t(seconds, sr)
    freq = 45 + 105 * np.exp(-t * 30)
    return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t * 9)


def snare(sr=SR, seconds=0.2, seed=1):
    """Noise burst plus a 190 Hz body."""
    t = _t(seconds, sr)
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return 0.6 * noise * np.exp(-t * 22) + 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 30)


def hat(sr=SR, seconds=0.05, seed=2):
    """Short high-passed noise tick."""
    t = _t(seconds, sr)
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return 0.3 * np.diff(noise, prepend=0.0) * np.exp(-t * 90)


def tone(freq, seconds, sr=SR, harmonics=(1.0, 0.5, 0.25), decay=3.0):
    """A plucked harmonic tone at `freq` Hz."""
    t = _t(seconds, sr)
    wave = sum(a * np.sin(2 * np.pi * freq * (k + 1) * t) for k, a in enumerate(harmonics))
    env = np.minimum(1.0, t * 200) * np.exp(-t * decay)
    return wave * env


def midi_hz(note):
    return 440.0 * 2 ** ((note - 69) / 12)


def place(track, sound, at, sr=SR, gain=1.0):
    """Add `sound` into `track` starting at time `at` (s), clipped at the end."""
    i = int(round(at * sr))
    n = min(sound.size, track.size - i)
    if n > 0:
        track[i:i + n] += gain * sound[:n]


def bar(sr=SR, bpm=120, drums=True, bass=None, chord=None, busy_hats=False):
    """One 4/4 bar: kick on 1 and 3, snare on 2 and 4, eighth (or 16th) hats,
    a bass note per beat from `bass` (MIDI notes), and a held `chord`."""
    beat = 60.0 / bpm
    out = np.zeros(int(round(4 * beat * sr)))
    if drums:
        for b in (0, 2):
            place(out, kick(sr), b * beat, sr)
        for b in (1, 3):
            place(out, snare(sr), b * beat, sr, 0.7)
        step = beat / (4 if busy_hats else 2)
        for k in range(int(round(4 * beat / step))):
            place(out, hat(sr), k * step, sr, 0.5)
    if bass is not None:
        for b, note in enumerate(bass):
            place(out, tone(midi_hz(note), beat * 0.9, sr, decay=4.0), b * beat, sr, 0.6)
    if chord is not None:
        for note in chord:
            place(out, tone(midi_hz(note), 4 * beat, sr, harmonics=(1.0, 0.3), decay=0.6), 0, sr, 0.25)
    return out


def demo_song(sr=SR, bpm=120):
    """About 40 s of music with a repeating bar structure and three sections.

    A (8 bars): drums and bass; B (8 bars): drums, a different bass line, chords
    and busier hats; A' (4 bars): drums and bass again. 20 bars of 2 s at 120 bpm.
    Returns float64 samples peaking at 0.9.
    """
    bass_a = [(40, 40, 43, 45), (38, 38, 41, 43)]          # E2.. / D2..
    bass_b = [(45, 48, 52, 48), (41, 45, 48, 45)]
    chords_b = [(57, 60, 64), (53, 57, 60)]                 # Am, F
    bars = []
    for k in range(8):
        bars.append(bar(sr, bpm, bass=bass_a[k % 2]))
    for k in range(8):
        bars.append(bar(sr, bpm, bass=bass_b[k % 2], chord=chords_b[k % 2], busy_hats=True))
    for k in range(4):
        bars.append(bar(sr, bpm, bass=bass_a[k % 2]))
    song = np.concatenate(bars)
    return 0.9 * song / np.max(np.abs(song))


def loop(seconds, repeats, sr=SR, bpm=120):
    """A `seconds`-long pattern repeated `repeats` times: strictly periodic.

    The pattern is a bar of drums, bass and a chord, cut to `seconds`; the
    result is exactly periodic with period ``round(seconds * sr)`` samples.
    """
    pattern = bar(sr, bpm, bass=(40, 43, 45, 47), chord=(52, 55, 59))
    n = int(round(seconds * sr))
    pattern = np.resize(pattern, n)
    out = np.tile(pattern, repeats)
    return 0.9 * out / np.max(np.abs(out))


# ---------------------------------------------------------------- songs from a seed

SCALES = {"minor": (0, 2, 3, 5, 7, 8, 10), "major": (0, 2, 4, 5, 7, 9, 11), "dorian": (0, 2, 3, 5, 7, 9, 10)}


def _pattern_bar(sr, beat, parts, timbre):
    """One 4/4 bar from a part list: drum hits on 16th-note steps, a bass note
    per beat, an optional held chord, with the song's timbre."""
    out = np.zeros(int(round(4 * beat * sr)))
    six = beat / 4
    for step in parts["kick"]:
        place(out, kick(sr), step * six, sr)
    for step in parts["snare"]:
        place(out, snare(sr, seed=timbre["noise_seed"]), step * six, sr, 0.7)
    for step in parts["hats"]:
        place(out, hat(sr, seed=timbre["noise_seed"] + 1), step * six, sr, 0.5)
    for b, note in enumerate(parts["bass"]):
        place(out, tone(midi_hz(note), beat * 0.9, sr, harmonics=timbre["bass"], decay=timbre["bass_decay"]),
              b * beat, sr, 0.6)
    for note in parts["chord"] or ():
        place(out, tone(midi_hz(note), 4 * beat, sr, harmonics=timbre["pad"], decay=timbre["pad_decay"]), 0, sr, 0.25)
    return out


def song(seed, seconds=40.0, sr=SR, return_sections=False):
    """A different song for every seed: tempo, drum pattern, key and scale, bass
    lines, chords, section plan and timbre are drawn from `seed`.

    Three to four sections (A, B, sometimes C, then A again) of whole bars fill
    `seconds`; each section has its own two-bar bass line, its own chords or
    none, and its own hat density. Returns exactly round(seconds * sr) float64
    samples peaking at 0.9. The same seed always gives the same samples. With
    `return_sections`, also the times (s) where one section gives way to the next.
    """
    rng = np.random.default_rng([seed, 7])
    bpm = float(rng.choice([96, 104, 112, 120, 128, 136]))
    beat = 60.0 / bpm
    scale = SCALES[str(rng.choice(list(SCALES)))]
    root = int(rng.integers(36, 44))                         # bass register, C2..G#2
    timbre = {"bass": tuple(np.round(rng.uniform(0.1, 1.0, int(rng.integers(1, 5))), 2)),
              "pad": tuple(np.round(rng.uniform(0.1, 1.0, int(rng.integers(1, 4))), 2)),
              "bass_decay": float(rng.uniform(2, 8)), "pad_decay": float(rng.uniform(0.3, 1.5)),
              "noise_seed": int(rng.integers(1000))}
    kick_steps = sorted({0, 8} | set(rng.choice(16, int(rng.integers(0, 3)), replace=False).tolist()))
    snare_steps = [4, 12] if rng.random() < 0.7 else [8]

    def degree(d, octave=0):
        return root + 12 * (octave + d // 7) + scale[d % 7]

    def section(chords, hat_every):
        bass = [[degree(int(d)) for d in rng.integers(0, 7, 4)] for _ in range(2)]
        chord = [[degree(int(d) + k, 1) for k in (0, 2, 4)] for d in rng.integers(0, 7, 2)] if chords else [None, None]
        return {"bass": bass, "chord": chord, "hats": list(range(0, 16, hat_every))}

    sections = {"A": section(False, 2), "B": section(True, int(rng.choice([1, 2]))),
                "C": section(bool(rng.random() < 0.5), int(rng.choice([1, 4])))}
    n_bars = max(1, int(np.ceil(seconds / (4 * beat))))
    plan = ["A", "B", "C", "A"] if rng.random() < 0.5 else ["A", "B", "A"]
    lengths = np.diff(np.round(np.linspace(0, n_bars, len(plan) + 1)).astype(int))
    bars = []
    for name, count in zip(plan, lengths):
        sec = sections[name]
        for k in range(count):
            parts = {"kick": kick_steps, "snare": snare_steps, "hats": sec["hats"],
                     "bass": sec["bass"][k % 2], "chord": sec["chord"][k % 2]}
            bars.append(_pattern_bar(sr, beat, parts, timbre))
    x = np.resize(np.concatenate(bars), int(round(seconds * sr)))
    x = 0.9 * x / np.max(np.abs(x))
    changes = np.cumsum(lengths)[:-1] * 4 * beat
    return (x, changes[(changes > 0) & (changes < seconds)]) if return_sections else x


# ---------------------------------------------------------------- video

VIDEO_FPS = 15          # the demo video's frame rate
VIDEO_SIZE = (150, 268)  # its frames, height x width (the original's frame size)


def _grid(size):
    h, w = size
    return np.mgrid[0:h, 0:w].astype(np.float64)


def _disc(yy, xx, cy, cx, r):
    """Anti-aliased disc coverage in [0, 1]."""
    return np.clip(r - np.hypot(yy - cy, xx - cx) + 0.5, 0.0, 1.0)


def _square(yy, xx, cy, cx, half):
    return np.clip(half - np.maximum(np.abs(yy - cy), np.abs(xx - cx)) + 0.5, 0.0, 1.0)


def _landscape(yy, xx, offset, h, w):
    """A smooth gray texture (hills and stripes), seen through a camera panned by `offset` pixels."""
    x = (xx + offset) / w
    y = yy / h
    return (100 + 30 * np.sin(2 * np.pi * (1.3 * x + 0.4 * y)) + 20 * np.sin(2 * np.pi * (3.7 * x - 1.1 * y))
            + 15 * np.cos(2 * np.pi * (0.6 * x)) * np.sin(2 * np.pi * 2.0 * y))


def periodic_frame(j, period, size=(24, 40)):
    """Frame j of a strictly periodic video: a bright disc on a circle, once round every `period` frames.

    Frame j and frame j + period are identical (the phase is j mod period).
    """
    h, w = size
    yy, xx = _grid(size)
    phase = 2 * np.pi * (j % period) / period
    cy, cx = h / 2 + 0.3 * h * np.sin(phase), w / 2 + 0.3 * w * np.cos(phase)
    img = 40 + 180 * _disc(yy, xx, cy, cx, 0.15 * min(h, w))
    return np.round(img).astype(np.uint8)


def periodic_video(n_frames, period, size=(24, 40)):
    """(n_frames, h, w) uint8: `periodic_frame` for j = 0 .. n_frames - 1."""
    return np.stack([periodic_frame(j, period, size) for j in range(n_frames)])


def demo_video(seconds=40.0, fps=VIDEO_FPS, size=VIDEO_SIZE):
    """The bundled demo video: (n, h, w) uint8 frames, gray.

    A bright disc circles once every 2 s throughout (periodic). For the first
    third the camera stands still; in the middle third it pans right at a
    constant speed over a textured landscape (not periodic) while a dark
    square drifts on a Lissajous path with incommensurate frequencies (not
    periodic); in the last third the camera stands still again at its new
    place and the square stays. Deterministic: no random numbers.
    """
    h, w = size
    yy, xx = _grid(size)
    n = int(round(seconds * fps))
    t1, t2 = seconds / 3, 2 * seconds / 3
    speed = 0.6 * w / (t2 - t1)                                     # pixels per second while panning
    out = np.empty((n, h, w), np.uint8)
    for j in range(n):
        t = j / fps
        offset = speed * min(max(t - t1, 0.0), t2 - t1)
        img = _landscape(yy, xx, offset, h, w)
        phase = 2 * np.pi * t / 2.0
        disc = _disc(yy, xx, h / 2 + 0.3 * h * np.sin(phase), w / 2 + 0.25 * w * np.cos(phase), 0.12 * h)
        img = img * (1 - disc) + 235 * disc
        if t >= t1:
            u = t - t1
            cy = h / 2 + 0.32 * h * np.sin(2 * np.pi * 0.23 * u)
            cx = w / 2 + 0.38 * w * np.sin(2 * np.pi * 0.23 * np.sqrt(2) * u + 1.0)
            sq = _square(yy, xx, cy, cx, 0.09 * h)
            img = img * (1 - sq) + 15 * sq
        out[j] = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return out
