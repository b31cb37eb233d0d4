"""A real corpus from Debian's packaged game soundtracks: its manifest and its deterministic 30 s clips.

The packages are installed by `make corpus` (apt-get), never at run time. This
module only reads what dpkg says is installed:

- `manifest`: a row per music file of every package (package, version, file,
  licence, duration, sha256), the corpus's record of what it was made from;
- `choose`: which tracks become songs (round robin over the packages, evenly
  spaced within each, so that no package dominates), tracks too short for a
  clip left out and said so;
- `cut`: clips of CLIP_SECONDS from OFFSET_SECONDS on (more than one,
  non-overlapping, from a long track when CLIPS_PER_TRACK > 1), written as
  16-bit mono WAV files beside clips.json, which names each clip's source
  file, offset, duration and both sha256 sums. A trial's provenance carries
  its clip's entry (`clip_facts`).
"""
import csv
import hashlib
import io
import json
import re
import subprocess
from pathlib import Path

from dae import audio, store
from dae.errors import UserError

# package -> the glob of its music files (relative to /); wesnoth-music is kept aside for independent checks
MUSIC = {
    "singularity-music": "usr/share/games/singularity/music/**/*.ogg",
    "hyperrogue-music": "usr/share/hyperrogue/music/*.ogg",
    "drascula-music": "usr/share/scummvm/drascula/audio/*.ogg",
    "warzone2100-music": "usr/share/games/warzone2100/music/**/*.opus",
    "asc-music": "usr/share/games/asc/music/*.mp3",
}
KEPT_ASIDE = ("wesnoth-music",)
CLIPS_JSON = "clips.json"
MANIFEST_CSV = "manifest.csv"
MANIFEST_FIELDS = ["package", "version", "file", "licence", "seconds", "sample_rate", "sha256", "status"]


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def installed_version(package):
    """The installed version of a Debian package, or None when it is not installed."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Status}\t${Version}", package],
                             capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    status, _, version = out.stdout.partition("\t")
    return version.strip() if out.returncode == 0 and status.endswith(" installed") else None


def licence(package, root="/"):
    """The licence of a package's files, from /usr/share/doc/<package>/copyright: the `Files: *`
    stanza's License in Debian's machine-readable format, else the Creative Commons licence the
    text names, else 'see <that file>'."""
    path = Path(root) / "usr/share/doc" / package / "copyright"
    if not path.is_file():
        return "unknown (no copyright file)"
    text = path.read_text(errors="replace")
    m = re.search(r"^Files:\s*\*\s*\n(?:[^\n]+\n)*?License:\s*(\S[^\n]*)", text, flags=re.M)
    if m:
        return m.group(1).strip()
    if "CREATIVE COMMONS PUBLIC LICENSE" in text.upper():
        terms = "BY-SA" if re.search(r"Attribution,?\s+Share\s*Alike", text, flags=re.I) else "BY"
        version = re.search(r"Attribution-\w+ (\d\.\d)", text)
        return f"CC {terms}" + (f" {version.group(1)}" if version else "")
    return f"see {path}"


def music_files(package, root="/", music=None):
    """The music files of an installed package, sorted (Path objects); music : {package: glob}
    (default MUSIC)."""
    music = MUSIC if music is None else music
    if package not in music:
        raise UserError(f"package {package!r} is not one this corpus knows; choose from {', '.join(music)}")
    return sorted(p for p in Path(root).glob(music[package]) if p.is_file())


def duration(path):
    """(seconds, sample rate) of an audio file, decoded in full (a declared length can lie)."""
    n, sr = 0, None
    with audio.open_audio(path) as (sr, blocks):
        for b in blocks:
            n += len(b)
    return n / sr, sr


def manifest(packages, root="/", progress=print, version_of=installed_version, music=None, known=None):
    """A row per music file of the packages (MANIFEST_FIELDS; status "ok", or why the file
    cannot be used: one the bundled ffmpeg cannot decode is listed, not clipped). Raises a UserError naming the
    packages that are not installed, and how to install them. root, version_of, music : where the
    files are, how a version is looked up and each package's glob (tests give their own). known :
    {(file, sha256): an earlier manifest's row}; a file whose content is unchanged keeps its
    measured duration, sample rate and status instead of being decoded again."""
    known = known or {}
    missing = [p for p in packages if version_of(p) is None]
    if missing:
        raise UserError(f"not installed: {', '.join(missing)}; run `make corpus` (it installs them with apt-get)")
    rows = []
    for package in packages:
        version, lic = version_of(package), licence(package, root)
        files = music_files(package, root, music)
        if not files:
            raise UserError(f"{package} {version} holds no music files; is it installed in full? "
                            f"reinstall it with apt-get install --reinstall {package}")
        for path in files:
            row = {"package": package, "version": version, "file": str(path), "licence": lic,
                   "sha256": file_sha256(path), "status": "ok"}
            before = known.get((row["file"], row["sha256"]))
            if before:
                rows.append(row | {k: before[k] for k in ("seconds", "sample_rate", "status")})
                continue
            try:
                seconds, sr = duration(path)
                row |= {"seconds": round(seconds, 3), "sample_rate": sr}
            except UserError as e:   # a file the bundled ffmpeg cannot decode: listed, never clipped
                row |= {"seconds": float("nan"), "sample_rate": "", "status": f"undecodable: {e}".split(";")[0]}
            rows.append(row)
        progress(f"corpus: {package} {version}: {len(files)} music files ({lic})")
    return rows


def clip_offsets(seconds, offset, clip_seconds, clips_per_track):
    """Start times (s) of the non-overlapping clips a track of `seconds` gives: offset,
    offset + clip_seconds, ... while a whole clip fits, at most clips_per_track of them."""
    if clip_seconds <= 0 or offset < 0 or clips_per_track < 1:
        raise ValueError(f"need clip_seconds > 0, offset >= 0 and clips_per_track >= 1, got "
                         f"{clip_seconds}, {offset}, {clips_per_track}")
    n = int(max(0.0, seconds - offset) // clip_seconds)
    return [offset + i * clip_seconds for i in range(min(n, clips_per_track))]


def choose(rows, songs, offset, clip_seconds, clips_per_track):
    """The clips of the corpus: (chosen, skipped). chosen is a list of dicts (the manifest row
    and its offset), round robin over the packages in the order given, each package's tracks
    taken evenly spaced in file order, until `songs` clips; skipped lists (file, reason) for
    every track too short for one clip or not decodable."""
    by_package, skipped = {}, []
    for r in rows:
        if r.get("status", "ok") != "ok":
            skipped.append((r["file"], r["status"]))
            continue
        offs = clip_offsets(r["seconds"], offset, clip_seconds, clips_per_track)
        if not offs:
            skipped.append((r["file"], f"{r['seconds']:.1f} s is shorter than {offset:g} + {clip_seconds:g} s"))
        by_package.setdefault(r["package"], []).extend(dict(r, offset=o) for o in offs)
    # each package's clips in an order spread across its tracks, so that one album does not fill it
    order = {package: [clips[i] for i in _spread(len(clips))] for package, clips in by_package.items()}
    chosen = []
    while len(chosen) < songs and any(order.values()):
        for package in order:
            if order[package] and len(chosen) < songs:
                chosen.append(order[package].pop(0))
    return chosen, skipped


def _spread(n):
    """0..n-1 in an order whose every prefix spreads across the range: 0, n/2, n/4, 3n/4, ..."""
    out, seen, parts = [], set(), 1
    while len(out) < n:
        for k in range(parts):
            i = k * n // parts
            if i not in seen:
                seen.add(i)
                out.append(i)
        parts *= 2
    return out


def clip_name(row):
    """A clip's file name: <package without -music>_<track stem>_<offset>s.wav, safe characters only."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", Path(row["file"]).stem).strip("-").lower()
    return f"{row['package'].removesuffix('-music')}_{stem}_{int(round(row['offset'])):03d}s.wav"


def cut(chosen, out_dir, clip_seconds, progress=print):
    """Write every chosen clip as a 16-bit mono WAV in `out_dir` (one that is already there with
    the recorded sha256 is kept) and clips.json, all as one commit (`store.group_commit`): a crash
    leaves the previous corpus or this one, never clips without their index. Returns clips.json's
    entries."""
    out_dir = Path(out_dir)
    store.make_folder(out_dir)
    store.recover(out_dir)                      # a commit a killed run left half done
    store.remove_stale_temporaries(out_dir)     # and the clips it had not committed
    old = {}
    if (out_dir / CLIPS_JSON).is_file():
        old = {c["clip"]: c for c in json.loads((out_dir / CLIPS_JSON).read_text())["clips"]}
    entries = []
    with store.group_commit() as group:
        _cut_into(group, chosen, out_dir, clip_seconds, old, entries, progress)
    return entries


def _cut_into(group, chosen, out_dir, clip_seconds, old, entries, progress):
    """`cut`'s work, staged in `group`."""
    for row in chosen:
        name = clip_name(row)
        target = out_dir / name
        entry = {"clip": name, "package": row["package"], "version": row["version"], "source": row["file"],
                 "source_sha256": row["sha256"], "licence": row["licence"], "offset_seconds": row["offset"],
                 "seconds": clip_seconds}
        kept = old.get(name)
        if (kept and target.is_file() and {k: kept.get(k) for k in entry} == entry
                and file_sha256(target) == kept.get("sha256")):
            entries.append(kept)
            continue
        x, sr = audio.read_audio(row["file"])
        a = int(round(row["offset"] * sr))
        clip = x[a:a + int(round(clip_seconds * sr))]
        tmp = group.stage(target)
        audio.write_wav(tmp, clip, sr, "int16")
        entries.append(entry | {"sample_rate": sr, "sha256": file_sha256(tmp)})
        progress(f"corpus: {name} ({row['package']}, {Path(row['file']).name} from {row['offset']:g} s)")
    wanted = {e["clip"] for e in entries}
    for stale in out_dir.glob("*.wav"):
        if stale.name not in wanted and not stale.name.startswith(store.TMP_PREFIX):   # an earlier choice's
            group.drop(stale)
    store.save_json(group.stage(out_dir / CLIPS_JSON), {"clips": entries})


def manifest_csv(rows):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def read_manifest(path):
    """An earlier manifest.csv as {(file, sha256): row} with numbers parsed; {} if there is none
    or it is not one (a manifest of other fields is ignored, and remade)."""
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != MANIFEST_FIELDS:
            return {}
        rows = list(reader)
    out = {}
    for row in rows:
        try:
            row["seconds"] = float(row["seconds"])
            row["sample_rate"] = int(row["sample_rate"]) if row["sample_rate"] else ""
        except ValueError:
            continue
        out[(row["file"], row["sha256"])] = row
    return out


def clip_facts(path):
    """The clips.json entry of an audio file that is a corpus clip (its source file, offset,
    package and sha256s), or None for any other file."""
    path = Path(path)
    index = path.parent / CLIPS_JSON
    if not index.is_file():
        return None
    try:
        clips = json.loads(index.read_text())["clips"]
    except (ValueError, KeyError, TypeError):
        return None
    return next((c for c in clips if c.get("clip") == path.name), None)


def build(cfg):
    """Stage 0 (corpus.py): the manifest of `cfg.packages` and the chosen clips under cfg.out_dir.
    Returns (clips.json entries, skipped tracks)."""
    packages = [p.strip() for p in cfg.packages.split(",") if p.strip()]
    aside = [p for p in packages if p in KEPT_ASIDE]
    if aside:
        raise UserError(f"{', '.join(aside)} is kept aside for independent checks; leave it out of PACKAGES")
    out = Path(cfg.out_dir)
    rows = manifest(packages, known=read_manifest(out / MANIFEST_CSV))
    store.save_text(out / MANIFEST_CSV, manifest_csv(rows))
    chosen, skipped = choose(rows, cfg.songs, cfg.offset_seconds, cfg.clip_seconds, cfg.clips_per_track)
    for file, why in skipped:
        print(f"corpus: skipped {file}: {why}")
    if len(chosen) < cfg.songs:
        print(f"corpus: only {len(chosen)} clips of {cfg.songs} asked: the packages have no more long enough tracks")
    entries = cut(chosen, out / "clips", cfg.clip_seconds)
    return entries, skipped


def summary_markdown(entries):
    """The corpus as a markdown table: clip, package and version, source file, offset, licence."""
    lines = ["| clip | package | source file | from | licence |", "|---|---|---|---|---|"]
    for e in entries:
        lines.append(f"| {e['clip'].removesuffix('.wav')} | {e['package']} {e['version']} | "
                     f"{Path(e['source']).name} | {e['offset_seconds']:g} s | {e['licence']} |")
    return "\n".join(lines)
