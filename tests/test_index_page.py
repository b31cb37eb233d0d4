"""The song's index page (outputs/<song>/index.html), opened in a real headless Chromium: one row per
run with the numbers of its divergence result, a verdict in words that says what those numbers say,
links that all lead to files that are there (none to a video a run does not have), nothing fetched;
written by pipeline.py (whose last line names it), divergence.py and play_embedding.py.

Builds on the conftest `pipeline` fixture (R-F and R trained and embedded on a 10 s song): a copy
of its folders goes through pipeline.py (the trained models are kept: up to date), so nothing is
trained here. Needs Debian's chromium and chromium-driver (`.ci/run` installs them) for the browser
tests; skipped, saying so, without.
"""
import json
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

from conftest import common, run_script
from dae import index_page, layout
from dae.clock import clock
from test_player import browser, needs_browser, open_page, severe, wait_for  # noqa: F401 (browser: the fixture)

SONG = "groove"


def copy_song(src_data, src_out, dest):
    """A copy of a song's data and output folders under `dest` (the model links kept as links)."""
    data, out = dest / "data", dest / "outputs"
    shutil.copytree(src_data, data, symlinks=True)
    shutil.copytree(src_out, out, symlinks=True)
    return data, out


@pytest.fixture(scope="module")
def song(pipeline, tmp_path_factory):
    """pipeline.py on a copy of the pipeline fixture's song (R-F and R, the player pages only), then
    play_embedding.py --format mp4 for R-F: R-F has a video, R has none."""
    tmp, src_data, src_out, audio, procs = pipeline
    assert all(p.returncode == 0 for p in procs), [p.stderr[-500:] for p in procs]
    data, out = copy_song(src_data, src_out, tmp_path_factory.mktemp("index"))
    args = ("--song", audio, *common(data, out))
    proc = run_script("pipeline.py", *args, "--epochs", 1, "--format", "html", timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rf = next(d.name for d in (data / SONG / "runs").iterdir() if "_R-F_" in d.name)
    video = run_script("play_embedding.py", *args, "--format", "mp4", "--width", 160, "--height", 96, "--fps", 5,
                       "--progress", "false")
    assert video.returncode == 0, video.stderr[-3000:]
    return audio, data, out, proc, video, rf


def rows(driver):
    """{run: {column: the cell's text, "hrefs": {css class: [href attribute]}, "missing": [css classes]}}
    of the page's table, as the browser shows it."""
    return driver.execute_script("""
        const cols = [...document.querySelectorAll('#runs thead th')].map(th => th.dataset.col);
        const out = {};
        for (const tr of document.querySelectorAll('#runs tbody tr')) {
            const row = {architecture: tr.dataset.architecture, hrefs: {}, missing: []};
            [...tr.children].forEach((td, i) => { row[cols[i]] = td.textContent; });
            for (const a of tr.querySelectorAll('a')) (row.hrefs[a.className] ||= []).push(a.getAttribute('href'));
            for (const s of tr.querySelectorAll('span.missing')) row.missing.push(s.classList[1]);
            out[tr.dataset.run] = row;
        }
        return out;""")


def hrefs(driver):
    """(the href as written, the file it resolves to) of every link on the page."""
    return [(raw, Path(url2pathname(urlparse(full).path))) for raw, full in driver.execute_script(
        "return [...document.querySelectorAll('a')].map(a => [a.getAttribute('href'), a.href])")]


def check_links(driver):
    """Every link is relative and resolves to a file that exists; returns the files."""
    links = hrefs(driver)
    for raw, path in links:
        assert not raw.startswith(("/", "file:", "http:", "https:")) and "://" not in raw, raw
        assert path.is_file(), (raw, path)
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0  # nothing fetched
    return [path for _, path in links]


def divergence_record(data, run):
    side, = (data / SONG / "runs" / run).glob("divergence_*.npz.json")
    return json.loads(side.read_text())


NUMBER = r"(\d+\.\d+)"
SMOOTH = re.compile(rf"^(R-F|R) is smoother than (R-F|R) here \(turning angle {NUMBER}° against {NUMBER}°\)")
EVEN = re.compile(rf"^R-F and R are as smooth here \(turning angle {NUMBER}° each\)")
CLOSER = re.compile(rf"(?:, and its|, but (R-F|R)'s|; (R-F|R)'s) KNN forecasts stay closer to the path "
                    rf"\(δ at step 1: {NUMBER} against {NUMBER}\)\.$")
AS_CLOSE = re.compile(rf"; their KNN forecasts stay as close to the path \(δ at step 1: {NUMBER} each\)\.$")


def check_verdict(line, table):
    """The verdict `line` says what the numbers of `table` ({"R-F": row, "R": row}) say: the smoother
    is the one with the lower turning angle shown, the closer the one with the lower δ at step 1,
    and the numbers it quotes are those shown."""
    angle = {a: float(table[a]["angle"].rstrip("°")) for a in ("R-F", "R")}
    delta = {a: float(table[a]["delta1"]) for a in ("R-F", "R")}
    m, even = SMOOTH.match(line), EVEN.match(line)
    assert m or even, line
    if m:
        smoother, rougher = m[1], m[2]
        assert {smoother, rougher} == {"R-F", "R"} and angle[smoother] < angle[rougher], (line, angle)
        assert (float(m[3]), float(m[4])) == (angle[smoother], angle[rougher]), (line, angle)
    else:
        smoother = None
        assert angle["R-F"] == angle["R"] == float(even[1]), (line, angle)
    c, same = CLOSER.search(line), AS_CLOSE.search(line)
    assert c or same, line
    if c:
        closer = c[1] or c[2] or smoother
        assert closer is not None and (c[1] is None or closer != smoother), line   # "but": the other one
        farther = {"R-F": "R", "R": "R-F"}[closer]
        assert delta[closer] < delta[farther], (line, delta)
        assert (float(c[3]), float(c[4])) == (delta[closer], delta[farther]), (line, delta)
    else:
        assert delta["R-F"] == delta["R"] == float(same[1]), (line, delta)


def test_the_pipeline_ends_naming_the_index_page(song):
    audio, data, out, proc, video, rf = song
    lines = [l.split(" | ", 1)[1] if l.startswith(("R-F | ", "R | ")) else l   # a run's lines, side by side
             for l in proc.stdout.strip().splitlines()]
    assert lines[-1] == f"== done: 20 stages for {SONG}; open {out / SONG / index_page.PAGE_NAME}", lines[-3:]
    # divergence.py and play_embedding.py rewrote it when they made something (not when skipped), and said so
    made = 4 - sum(l.startswith(("divergence.py: ", "play_embedding.py: ")) and l.endswith(", skipped")
                   for l in lines)
    assert sum("saved" in l and l.split()[1] == str(out / SONG / "index.html") for l in lines) == made
    assert f"saved {out / SONG / 'index.html'}" in video.stdout


@needs_browser
def test_the_index_shows_every_run_its_numbers_and_a_verdict_that_says_what_they_say(song, browser):
    audio, data, out, proc, video, rf = song
    page = out / SONG / index_page.PAGE_NAME
    open_page(browser, page)
    wait_for(browser, "return document.readyState === 'complete'")
    table = rows(browser)
    runs = sorted(d.name for d in (out / SONG).iterdir() if d.is_dir())
    assert len(runs) == 2 and sorted(table) == runs                       # one row per run folder
    by_arch = {row["architecture"]: row for row in table.values()}
    assert set(by_arch) == {"R-F", "R"} and table[rf]["architecture"] == "R-F"
    for run, row in table.items():                                         # the numbers are the results'
        record = divergence_record(data, run)
        assert row["angle"] == f"{record['turning_angle_deg']:.1f}°", (run, row)
        for k in ("1", "5", "29"):
            assert row[f"delta{k}"] == f"{record['delta_at'][k]:.4f}", (run, k, row)
        assert row["growth"] == f"{record['growth_per_second']:.2f}"
        assert row["rule"] == f"K=5, exclusion {record['exclusion_radius']}"
        assert row["length"] == clock(10.0) and row["notes"] == ""          # the song's length, as m:ss.s
        assert row["model"].startswith(row["architecture"]) and row["input"] == "0.5 s window, 3-D"
    verdicts = browser.execute_script(
        "return [...document.querySelectorAll('.verdict')].map(p => [p.className, p.dataset.rf, p.dataset.r, "
        "p.textContent])")
    assert len(verdicts) == 1, verdicts
    cls, rf_run, r_run, line = verdicts[0]
    assert cls == "verdict" and table[rf_run]["architecture"] == "R-F" and table[r_run]["architecture"] == "R"
    check_verdict(line, by_arch)
    files = check_links(browser)
    # each run links what it has: R-F its video, R (--format html) no video but says so
    assert [Path(h).name for h in by_arch["R-F"]["hrefs"]["video"]] == ["trajectory.mp4"]
    assert "video" not in by_arch["R"]["hrefs"] and by_arch["R"]["missing"] == ["video"]
    assert not any(f.name == "trajectory.mp4" and f.parent.name != rf for f in files)
    for run, row in table.items():
        assert [Path(h).name for h in row["hrefs"]["player"]] == ["player.html"]
        assert [Path(h).name for h in row["hrefs"]["path"]] == ["trajectory.png"]
        made = sorted(p.name for p in (out / SONG / run).glob("forecast_*_ic*.png"))   # other tests may add more
        assert len(made) >= 3 and sorted(Path(h).name for h in row["hrefs"]["forecast"]) == made
        assert len(row["hrefs"]["forecast3d"]) == len(made)
    forecasts = browser.execute_script(
        "return [...document.querySelectorAll('a.forecast')].map(a => a.textContent)")
    assert all(re.fullmatch(r"(KNN|MLP|LSTM) forecast from \d+:\d\d\.\d", t) for t in forecasts), forecasts
    assert {f.name for f in files if f.parent == out / SONG} == {"spectrogram.png", "divergence.png",
                                                                  "smoothness_R_vs_R-F.png"}
    assert severe(browser) == []
    # a link followed from the page opens the run's player
    player_href = browser.execute_script(f"return document.querySelector('tr[data-run=\"{rf}\"] a.player').href")
    browser.get(player_href + "#flat&muted")
    wait_for(browser, "return !!window.player && window.player.view() === 'flat'")


def test_verdict_words_follow_the_numbers():
    def row(arch, angle, delta):
        return {"architecture": arch, "result": {"meta": {"turning_angle_deg": angle, "delta_at": {"1": delta}}}}
    table = lambda rf, r: {"R-F": {"angle": f"{rf[0]:.1f}°", "delta1": f"{rf[1]:.4f}"},  # noqa: E731
                           "R": {"angle": f"{r[0]:.1f}°", "delta1": f"{r[1]:.4f}"}}
    cases = {((21.34, 0.01), (35.0, 0.02)): "R-F is smoother than R here (turning angle 21.3° against 35.0°), "
                                            "and its KNN forecasts stay closer to the path (δ at step 1: "
                                            "0.0100 against 0.0200)",
             ((40.0, 0.01), (35.0, 0.02)): "R is smoother than R-F here (turning angle 35.0° against 40.0°), "
                                           "but R-F's KNN forecasts stay closer to the path (δ at step 1: "
                                           "0.0100 against 0.0200)",
             ((35.01, 0.03), (34.98, 0.02)): "R-F and R are as smooth here (turning angle 35.0° each); R's KNN "
                                             "forecasts stay closer to the path (δ at step 1: 0.0200 against "
                                             "0.0300)",
             ((30.0, 0.02), (31.0, 0.02)): "R-F is smoother than R here (turning angle 30.0° against 31.0°); "
                                           "their KNN forecasts stay as close to the path (δ at step 1: 0.0200 "
                                           "each)"}
    for (rf, r), expected in cases.items():
        line = index_page.verdict(row("R-F", *rf), row("R", *r))
        assert line == expected
        check_verdict(line + ".", table(rf, r))          # and the checker agrees with the words


@needs_browser
def test_a_song_without_r_or_with_a_stale_result_is_listed_with_what_it_has(song, browser, tmp_path):
    """--compare-r false: R-F alone, no verdict; a divergence result changed since it was made: its
    numbers are not shown, the reason is; divergence.py, run again, writes the page with them."""
    audio, data, out, proc, video, rf = song
    data2, out2 = copy_song(data, out, tmp_path)
    for folder in (data2 / SONG / "runs", out2 / SONG):
        for d in folder.iterdir():
            if d.is_dir() and "_R_" in d.name:
                shutil.rmtree(d)
    (out2 / SONG / "smoothness_R_vs_R-F.png").unlink()
    (out2 / SONG / rf / "trajectory.mp4").unlink()
    result, = (data2 / SONG / "runs" / rf).glob("divergence_*.npz")
    result.write_bytes(result.read_bytes() + b"\0")                        # changed since its record
    page = index_page.write_index(layout.Paths(SONG, data2, out2))
    assert page == out2 / SONG / "index.html"
    open_page(browser, page)
    wait_for(browser, "return document.readyState === 'complete'")
    table = rows(browser)
    assert list(table) == [rf]
    row = table[rf]
    assert row["angle"] == row["growth"] == "—" and "does not match its record" in row["notes"]
    assert "delta1" not in row                                             # no result measured any step
    assert "video" not in row["hrefs"] and row["missing"] == ["video"]
    assert browser.execute_script("return document.querySelector('.verdict').className") == "verdict none"
    assert browser.execute_script("return document.querySelector('.verdict').textContent").startswith("No verdict")
    files = check_links(browser)
    assert all(f.name != "trajectory.mp4" for f in files) and len(files) >= 9
    # divergence.py makes the result again, and the page with its numbers
    result.unlink()
    p = run_script("divergence.py", "--song", audio, *common(data2, out2))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1].startswith(f"saved {page} ")
    open_page(browser, page)
    wait_for(browser, "return document.readyState === 'complete'")
    row = rows(browser)[rf]
    assert row["angle"] == f"{divergence_record(data2, rf)['turning_angle_deg']:.1f}°" and row["notes"] == ""
    check_links(browser)


def test_the_page_is_plain_html_with_relative_links_and_refuses_a_folder_in_its_place(tmp_path):
    from conftest import user_error
    paths = layout.Paths(SONG, tmp_path / "data", tmp_path / "outputs")
    run = tmp_path / "outputs" / SONG / "w0.5s_R-F_a0.001_b1_g0_d0_z3_l45_s1"
    run.mkdir(parents=True)
    (run / "trajectory.png").write_bytes(b"\x89PNG")
    text = (index_page.write_index(paths)).read_text()
    assert text.isascii() and "<script" not in text and "http" not in text
    assert 'href="w0.5s_R-F_a0.001_b1_g0_d0_z3_l45_s1/trajectory.png"' in text
    assert "no divergence result yet" in text and "no video" in text and "trajectory.mp4" not in text
    assert not list((tmp_path / "outputs" / SONG).glob(".tmp*"))
    (tmp_path / "outputs" / SONG / "index.html").unlink()
    (tmp_path / "outputs" / SONG / "index.html").mkdir()
    user_error(lambda: index_page.write_index(paths), "index.html", "is a folder", "move it away")
