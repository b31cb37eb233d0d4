"""The real corpus's manifest and clips, on a synthesised package tree (no apt, no download)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dae import audio, corpus, trials
from dae.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SR = 8000
MUSIC = {"alpha-music": "usr/share/alpha/*.wav", "beta-music": "usr/share/beta/*.wav"}


def tone(seconds, freq):
    t = np.arange(int(seconds * SR)) / SR
    return 0.5 * np.sin(2 * np.pi * freq * t) * (1 + t / seconds) / 2


def tree(tmp_path):
    root = tmp_path / "root"
    for pkg, tracks in (("alpha", {"a1": 20, "a2": 70, "a3": 100}), ("beta", {"b1": 65, "b2": 95})):
        folder = root / "usr/share" / pkg
        folder.mkdir(parents=True)
        for i, (name, seconds) in enumerate(tracks.items()):
            audio.write_wav(folder / f"{name}.wav", tone(seconds, 220 + 50 * i), SR, "int16")
        doc = root / "usr/share/doc" / f"{pkg}-music"
        doc.mkdir(parents=True)
    (root / "usr/share/doc/alpha-music/copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: someone\nLicense: GPL-2+\n\nFiles: debian/*\nLicense: MIT\n")
    (root / "usr/share/doc/beta-music/copyright").write_text(
        "THIS CREATIVE COMMONS PUBLIC LICENSE ...\n this License: Attribution, ShareAlike.\n"
        "(e.g., Attribution-ShareAlike 3.0 US)\n")
    return root


def rows(root):
    return corpus.manifest(list(MUSIC), root=root, progress=lambda *_: None,
                           version_of=lambda p: "1.0-1", music=MUSIC)


def test_manifest_names_every_file_with_its_version_licence_duration_and_sha256(tmp_path):
    root = tree(tmp_path)
    m = rows(root)
    assert [Path(r["file"]).stem for r in m] == ["a1", "a2", "a3", "b1", "b2"]
    assert {r["licence"] for r in m if r["package"] == "alpha-music"} == {"GPL-2+"}
    assert {r["licence"] for r in m if r["package"] == "beta-music"} == {"CC BY-SA 3.0"}
    assert [r["seconds"] for r in m] == pytest.approx([20, 70, 100, 65, 95], abs=1e-3)
    assert all(r["sha256"] == corpus.file_sha256(r["file"]) and r["version"] == "1.0-1" for r in m)
    assert "a1.wav" in corpus.manifest_csv(m)


def test_a_rerun_decodes_only_what_changed(tmp_path, monkeypatch):
    root = tree(tmp_path)
    first = rows(root)
    saved = tmp_path / "manifest.csv"
    saved.write_text(corpus.manifest_csv(first))
    changed = root / "usr/share/beta/b2.wav"
    audio.write_wav(changed, tone(50, 300), SR, "int16")         # new content at the same path
    decoded = []
    real = corpus.duration
    monkeypatch.setattr(corpus, "duration", lambda path: decoded.append(Path(path).name) or real(path))
    again = corpus.manifest(list(MUSIC), root=root, progress=lambda *_: None, version_of=lambda p: "1.0-1",
                            music=MUSIC, known=corpus.read_manifest(saved))
    assert decoded == ["b2.wav"]
    assert [r["seconds"] for r in again] == pytest.approx([20, 70, 100, 65, 50], abs=1e-3)
    assert corpus.manifest_csv(again) != corpus.manifest_csv(first)
    assert corpus.manifest_csv(again[:4]) == corpus.manifest_csv(first[:4])


def test_a_package_not_installed_is_named_with_the_make_target():
    with pytest.raises(UserError, match=r"not installed: gamma-music; run `make corpus`"):
        corpus.manifest(["gamma-music"], version_of=lambda p: None)


def test_clips_are_round_robin_deterministic_and_too_short_tracks_are_said(tmp_path):
    root = tree(tmp_path)
    m = rows(root)
    chosen, skipped = corpus.choose(m, 10, offset=30, clip_seconds=30, clips_per_track=1)
    assert [Path(c["file"]).stem for c in chosen][:2] == ["a2", "b1"]          # packages alternate
    assert {Path(c["file"]).stem for c in chosen} == {"a2", "a3", "b1", "b2"}   # a1 is too short
    assert [Path(f).stem for f, why in skipped] == ["a1"] and "shorter than 30 + 30 s" in skipped[0][1]
    two, _ = corpus.choose(m, 10, offset=30, clip_seconds=30, clips_per_track=2)
    assert sorted((Path(c["file"]).stem, c["offset"]) for c in two) == [
        ("a2", 30), ("a3", 30), ("a3", 60), ("b1", 30), ("b2", 30), ("b2", 60)]   # never overlapping, whole
    assert corpus.choose(m, 3, 30, 30, 1)[0] == chosen[:3]
    assert corpus.clip_offsets(100, 30, 30, 5) == [30, 60]


def test_a_clip_holds_exactly_its_part_of_the_track_and_names_it(tmp_path):
    root = tree(tmp_path)
    chosen, _ = corpus.choose(rows(root), 2, offset=30, clip_seconds=30, clips_per_track=1)
    out = tmp_path / "clips"
    entries = corpus.cut(chosen, out, 30, progress=lambda *_: None)
    e = entries[0]
    clip, sr = audio.read_audio(out / e["clip"])
    track, _ = audio.read_audio(e["source"])
    assert sr == SR and len(clip) == 30 * SR
    np.testing.assert_array_equal(clip, track[30 * SR:60 * SR])
    assert e["sha256"] == corpus.file_sha256(out / e["clip"])
    assert corpus.clip_facts(out / e["clip"]) == e
    assert corpus.clip_facts(e["source"]) is None
    # a trial on the clip names its clip and package
    r = trials.trial_result({"song": str(out / e["clip"]), "variant": "R", "seed": 1, "window": 0.5, "latent": 3,
                             "settings": {}})
    assert r["clip"]["source"] == e["source"] and r["clip"]["offset_seconds"] == 30 and r["group"] == "alpha-music"
    # again: the same bytes, files kept; a clip no longer chosen is removed
    mtime = (out / e["clip"]).stat().st_mtime_ns
    again = corpus.cut(chosen[:1], out, 30, progress=lambda *_: None)
    assert again[0]["sha256"] == e["sha256"] and (out / e["clip"]).stat().st_mtime_ns == mtime
    assert sorted(p.name for p in out.glob("*.wav")) == [e["clip"]]
    assert [c["clip"] for c in json.loads((out / "clips.json").read_text())["clips"]] == [e["clip"]]


@pytest.mark.parametrize("args, words", [(["--packages", "wesnoth-music"], "kept aside for independent checks"),
                                         (["--songs", "0"], "SONGS=0")])
def test_bad_corpus_settings_get_one_line(tmp_path, args, words):
    p = subprocess.run([sys.executable, str(ROOT / "corpus.py"), *args, "--out-dir", str(tmp_path / "c")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 1
    assert words in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()


def test_a_killed_cut_leaves_the_previous_corpus_or_none(tmp_path, monkeypatch):
    """The clips and clips.json are one commit: a cut killed half way publishes no clip without its
    index, and its temporaries are neither songs of a folder nor left behind by the next cut."""
    root = tree(tmp_path)
    chosen, _ = corpus.choose(rows(root), 3, 5.0, 10.0, 1)
    out = tmp_path / "clips"
    first = corpus.cut(chosen, out, 10.0, progress=lambda *_: None)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other, _ = corpus.choose(rows(root), 3, 15.0, 10.0, 1)        # another offset: every clip differs
    calls = []

    def dies(*a, **k):
        calls.append(a)
        if len(calls) == 2:
            raise KeyboardInterrupt                                 # killed after one new clip was written
        return real(*a, **k)
    real = corpus.audio.write_wav
    monkeypatch.setattr(corpus.audio, "write_wav", dies)
    with pytest.raises(KeyboardInterrupt):
        corpus.cut(other, out, 10.0, progress=lambda *_: None)
    assert {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")} == before
    leftover = out / ".tmp999999-stale.wav"                         # what a kill -9 leaves
    leftover.write_bytes(b"x")
    monkeypatch.setattr(corpus.audio, "write_wav", real)
    again = corpus.cut(other, out, 10.0, progress=lambda *_: None)
    assert not leftover.exists() and again != first
    assert json.loads((out / "clips.json").read_text())["clips"] == again


def test_a_folder_s_songs_leave_out_hidden_temporaries(tmp_path):
    from dae import grid
    audio.write_wav(tmp_path / "a.wav", tone(1, 220), SR, "int16")
    audio.write_wav(tmp_path / ".tmp123-b.wav", tone(1, 220), SR, "int16")   # a killed writer's temporary
    assert [Path(str(s)).name for s in grid.find_songs(str(tmp_path))] == ["a.wav"]
