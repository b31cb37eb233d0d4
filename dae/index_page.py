"""A song's index page: every run of it, with its pages, videos and figures, and R against R-F.

    outputs/<song>/index.html

One row per run (every run folder under outputs/<song>/, and every run under
data/<song>/runs/ with a divergence result): what it is (R or R-F, its input
and latent size), the length of the song it embeds (m:ss.s), the numbers of
its divergence result (the mean turning angle of its path, mean δ at steps 1,
5 and 29, the growth of mean ln δ per second, and the KNN rule they were
measured with), and links to what it has of its player page, video, pictures
and forecasts. Above the table, for every R-F run that has an R run of the
same settings but the forecasting weight (both with a result under the same
rule), one line says in words made from the numbers shown which of the two
is smoother and whose forecasts stay closer to the path (`verdict`). A run is
listed with what it has: where there is no video there is no video link, and
a divergence result that is stale or damaged is not shown, the reason is.

Plain HTML and CSS, ASCII with character references, relative links only and
nothing fetched: the page works opened from disk, and moves with its folder.
It is written atomically (`store.save_text`) by divergence.py and
play_embedding.py when they make something, and by pipeline.py at its end
(`write_index`).
"""
import html
import re
from pathlib import Path
from urllib.parse import quote

from dae import embedding, layout, player, reports, sources, store
from dae.clock import clock
from dae.errors import UserError

PAGE_NAME = "index.html"

# a run's name: its input ('w0.5s', 'v36x64s1'), R or R-F, the forecasting weight, then every other setting
RUN_NAME = re.compile(r"^(?P<head>[^_]+)_(?P<arch>R-F|R)_a(?P<alpha>[^_]+)_(?P<rest>.+)$")
FORECAST_PNG = re.compile(r"^forecast_(?P<method>[a-z-]+)_ic(?P<ic>\d+)\.png$")
METHODS = {"knn": "KNN", "knn-original": "KNN (original rule)", "mlp": "MLP", "lstm": "LSTM"}
SONG_FIGURES = (("spectrogram.png", "spectrogram"), ("divergence.png", "divergence of KNN forecasts"),
                ("smoothness_R_vs_R-F.png", "R and R-F side by side"))
DASH = "\u2014"


def page_path(paths):
    """Where the index page of the song of `paths` (a `layout.Paths`) goes: outputs/<song>/index.html."""
    return Path(paths.outputs) / paths.song / PAGE_NAME


def write_index(paths):
    """Write the index page of the song of `paths` (a `layout.Paths` of the song or of any of its
    runs) from what its folders hold now, atomically; returns its path."""
    target = page_path(paths)
    store.make_folder(target.parent)
    if target.is_dir():
        raise UserError(f"{target} is a folder where the song's index page goes: move it away, then run the "
                        "same command again")
    store.save_text(target, page(paths))
    return target


# ---------------------------------------------------------------- what the folders hold

def run_names(paths):
    """Every run of the song: the folders under outputs/<song>/ and the runs with a divergence result."""
    folder = Path(paths.outputs) / paths.song
    names = {d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")} \
        if folder.is_dir() else set()
    return sorted(names | {p.parent.name for p in reports.divergence_files(paths.song_dir)})


def describe(run):
    """(architecture, its forecasting weight or None, what it embeds) from a run's name; '?' where
    the name is not one this project gives."""
    m = RUN_NAME.match(run)
    arch, alpha = (m["arch"], m["alpha"]) if m else ("?", None)
    if m and re.fullmatch(r"w[\d.]+s", m["head"]):
        what = f"{m['head'][1:-1]} s window"
    elif m and re.fullmatch(r"v\d+x\d+s\d+", m["head"]):
        size, step = re.fullmatch(r"v(\d+x\d+)s(\d+)", m["head"]).groups()
        what = f"video, {size} frames" + (f", every {step}th" if step != "1" else "")
    else:
        what = "?"
    z = re.search(r"_z(\d+)_", run)
    return arch, alpha, what + (f", {z[1]}-D" if z else "")


def pair_key(run):
    """What an R-F run and its R run share: the name but the architecture and forecasting weight."""
    m = RUN_NAME.match(run)
    return (m["head"], m["rest"]) if m else None


def rule_of(meta):
    """The KNN rule a divergence result was measured with, in words: 'K=5, exclusion 12'."""
    rule = "original rule" if meta["rule"] == "original" else f"exclusion {meta['exclusion_radius']}"
    return f"K={meta['settings']['K']}, {rule}"


def gather(paths, run):
    """What the page shows of `run`: its checked divergence result (the exclusion rule's first,
    when it has several), the song's length and window times (from its checked embedding), its
    files in outputs/<song>/<run>/ and what keeps numbers from being shown."""
    rp = layout.Paths(paths.song, paths.data, paths.outputs, run=run)
    results, notes = [], []
    for f in sorted(rp.run_dir.glob("divergence_*.npz")):
        try:
            results.append(reports.load_result(rp, f))
        except UserError as e:
            notes.append(str(e))
    results.sort(key=lambda r: (r["meta"]["rule"] != "exclusion", r["path"].name))
    if not results and not notes:
        notes.append("no divergence result yet: `python divergence.py` with this run's settings")
    times = length = None
    if rp.run_dir.is_dir():
        try:
            emb = embedding.load(rp)
            times, length = emb["t_center"], float(sources.record_of(emb["chain"])["duration_s"])
        except UserError as e:
            if not results:
                notes.append(str(e))
    arch, alpha, what = describe(run)
    return {"run": run, "paths": rp, "result": results[0] if results else None,
            "others": [rule_of(r["meta"]) for r in results[1:]], "notes": notes, "length": length,
            "links": links(rp, times), "architecture": arch, "alpha": alpha, "what": what}


def links(rp, times):
    """What the run's output folder holds, in the page's order, as lines of (css class, label, file):
    the player page and the video (each (class, 'no ...', None) where it is missing), the pictures
    of the path, then one line per forecast (its picture and its 3-D page)."""
    out = [[(cls, label, f) if f.is_file() else (cls, f"no {label}", None)
            for cls, label, f in (("player", "player page", player.page_path(rp)), ("video", "video", rp.video))]]
    out.append([(cls, label, f) for cls, label, f in (
        ("path", "path", rp.trajectory_png), ("sections", "sections", rp.trajectory_sections_png),
        ("path3d", "3-D path", rp.trajectory_html)) if f.is_file()])
    folder = Path(rp.output_dir)
    forecasts = [(FORECAST_PNG.match(p.name), p) for p in folder.glob("forecast_*.png")] if folder.is_dir() else []
    order = list(METHODS)
    for m, png in sorted(((m, p) for m, p in forecasts if m and m["method"] in METHODS),
                         key=lambda mp: (order.index(mp[0]["method"]), int(mp[0]["ic"]))):
        ic = int(m["ic"])
        start = clock(float(times[ic])) if times is not None and ic < len(times) else f"index {ic}"
        page = png.with_suffix(".html")
        out.append([("forecast", f"{METHODS[m['method']]} forecast from {start}", png)]
                   + ([("forecast3d", "3-D", page)] if page.is_file() else []))
    return [line for line in out if line]


# ---------------------------------------------------------------- the numbers, in words

def angle(row):
    """The mean turning angle as the page shows it (degrees, one decimal)."""
    return round(float(row["result"]["meta"]["turning_angle_deg"]), 1)


def delta(row, step):
    """Mean δ at `step` as the page shows it (four decimals), or None where not measured."""
    value = row["result"]["meta"]["delta_at"].get(str(step))
    return None if value is None else round(float(value), 4)


def pairs(rows):
    """(R-F row, R row) of every R-F run that has an R run of the same settings but the forecasting
    weight, both with a divergence result under the same rule."""
    found = []
    for rf in rows:
        if rf["architecture"] != "R-F" or rf["result"] is None or pair_key(rf["run"]) is None:
            continue
        for r in rows:
            if (r["architecture"] == "R" and r["result"] is not None and pair_key(r["run"]) == pair_key(rf["run"])
                    and rule_of(r["result"]["meta"]) == rule_of(rf["result"]["meta"])):
                found.append((rf, r))
    return found


def verdict(rf, r):
    """One line, in words made from the numbers the table shows: which of the R-F run `rf` and the
    R run `r` (rows) is smoother (the lower mean turning angle), and whose KNN forecasts stay closer
    to the path one step ahead (the lower mean δ at step 1)."""
    angles, deltas = {"R-F": angle(rf), "R": angle(r)}, {"R-F": delta(rf, 1), "R": delta(r, 1)}
    if angles["R-F"] == angles["R"]:
        smoother = None
        line = f"R-F and R are as smooth here (turning angle {angles['R']:.1f}\u00b0 each)"
    else:
        smoother, rougher = ("R-F", "R") if angles["R-F"] < angles["R"] else ("R", "R-F")
        line = (f"{smoother} is smoother than {rougher} here "
                f"(turning angle {angles[smoother]:.1f}\u00b0 against {angles[rougher]:.1f}\u00b0)")
    if None in deltas.values():
        return line
    if deltas["R-F"] == deltas["R"]:
        return line + f"; their KNN forecasts stay as close to the path (\u03b4 at step 1: {deltas['R']:.4f} each)"
    closer, farther = ("R-F", "R") if deltas["R-F"] < deltas["R"] else ("R", "R-F")
    numbers = f"(\u03b4 at step 1: {deltas[closer]:.4f} against {deltas[farther]:.4f})"
    if smoother is None:
        return line + f"; {closer}'s KNN forecasts stay closer to the path {numbers}"
    if closer == smoother:
        return line + f", and its KNN forecasts stay closer to the path {numbers}"
    return line + f", but {closer}'s KNN forecasts stay closer to the path {numbers}"


NO_VERDICT = ("No verdict: no R-F run of this song has an R run of the same settings (but the forecasting weight) "
              "with a divergence result to compare with; `python pipeline.py --song <its audio file>` runs both")


# ---------------------------------------------------------------- the page

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em 2em; color: #222; }
h1 { font-size: 1.5em; margin: 0 0 .2em; }
p.about { color: #555; margin: 0 0 1em; }
.verdict { font-size: 1.1em; margin: .3em 0; }
.verdict.none { color: #666; font-size: 1em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: .35em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; vertical-align: bottom; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.run { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85em; }
td.model, td.input, td.rule { white-space: nowrap; }
td.links a, td.links span { margin-right: .7em; white-space: nowrap; }
td.links div + div { margin-top: .15em; }
span.missing { color: #999; }
td.notes { color: #a33; font-size: .85em; max-width: 32em; }
"""


def _text(value):
    """HTML text, ASCII only (everything else as character references)."""
    return html.escape(str(value)).encode("ascii", "xmlcharrefreplace").decode("ascii")


def _href(path, base):
    return _text(quote(Path(path).relative_to(base).as_posix()))


def _cell(cls, value, shown=None):
    if value is None:
        return f'<td class="number {cls}">{_text(DASH)}</td>'
    return f'<td class="number {cls}" data-value="{value!r}">{_text(shown if shown is not None else value)}</td>'


def page(paths):
    """The index page of the song of `paths`, as text."""
    base = Path(paths.outputs) / paths.song
    rows = [gather(paths, run) for run in run_names(paths)]
    measured = [row for row in rows if row["result"] is not None]
    steps = sorted({int(k) for row in measured for k in row["result"]["meta"]["delta_at"]})
    rates = {float(row["result"]["meta"]["points_per_second"]) for row in measured
             if "points_per_second" in row["result"]["meta"]}
    pps = rates.pop() if len(rates) == 1 else None            # one time step for every run: say it
    found = pairs(rows)
    verdicts = [(rf, r, verdict(rf, r)) for rf, r in found]
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{_text(paths.song)}: every run</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
           f"<h1>{_text(paths.song)}</h1>",
           f'<p class="about">{len(rows)} run{"s" * (len(rows) != 1)} of this song; lower turning angle: smoother '
           "path; lower &#948;: KNN forecasts that stay closer to the true path.</p>"]
    if verdicts:
        for rf, r, line in verdicts:
            prefix = f"{rf['run']} against {r['run']}: " if len(verdicts) > 1 else ""
            out.append(f'<p class="verdict" data-rf="{_text(rf["run"])}" data-r="{_text(r["run"])}">'
                       f"{_text(prefix + line)}.</p>")
    else:
        out.append(f'<p class="verdict none">{_text(NO_VERDICT)}.</p>')
    figures = [(name, label) for name, label in SONG_FIGURES if (base / name).is_file()]
    figures += [(p.name, f"the video's frames ({p.stem[len('frames_'):]})") for p in sorted(base.glob("frames_*.png"))]
    if figures:
        out.append('<p class="song">The song: ' + " &#183; ".join(
            f'<a href="{_href(base / name, base)}">{_text(label)}</a>' for name, label in figures) + "</p>")
    head = ['<th data-col="run">run</th>', '<th data-col="model">model</th>', '<th data-col="input">input</th>',
            '<th data-col="length">length</th>', '<th data-col="angle">turning angle</th>']
    head += [f'<th data-col="delta{k}"' + (f' title="{k / pps:.2f} s of song ahead"' if pps else "")
             + f">&#948; at step {k}</th>" for k in steps]
    head += ['<th data-col="growth">growth of ln &#948; per s</th>', '<th data-col="rule">rule</th>',
             '<th data-col="links">pages, videos, figures</th>', '<th data-col="notes">notes</th>']
    out += ['<table id="runs">', "<thead><tr>" + "".join(head) + "</tr></thead>", "<tbody>"]
    for row in rows:
        meta = row["result"]["meta"] if row["result"] is not None else None
        model = row["architecture"] + (f" (&#945; = {_text(row['alpha'])})" if row["architecture"] == "R-F" else "")
        cells = [f'<td class="run">{_text(row["run"]).replace("_", "_<wbr>")}</td>', f'<td class="model">{model}</td>',
                 f'<td class="input">{_text(row["what"])}</td>',
                 _cell("length", row["length"], clock(row["length"]) if row["length"] is not None else None),
                 _cell("angle", angle(row) if meta else None, f"{angle(row):.1f}\u00b0" if meta else None)]
        for k in steps:
            value = delta(row, k) if meta else None
            cells.append(_cell(f"delta{k}", value, f"{value:.4f}" if value is not None else None))
        growth = round(float(meta["growth_per_second"]), 2) if meta else None
        cells.append(_cell("growth", growth, f"{growth:.2f}" if growth is not None else None))
        rule = rule_of(meta) + "".join(f"; also measured: {o}" for o in row["others"]) if meta else DASH
        cells.append(f'<td class="rule">{_text(rule)}</td>')
        cells.append('<td class="links">' + "".join("<div>" + "".join(
            f'<a class="{cls}" href="{_href(f, base)}">{_text(label)}</a>' if f is not None
            else f'<span class="missing {cls}">{_text(label)}</span>' for cls, label, f in line) + "</div>"
            for line in row["links"]) + "</td>")
        cells.append('<td class="notes">' + "<br>".join(_text(n) for n in row["notes"]) + "</td>")
        out.append(f'<tr data-run="{_text(row["run"])}" data-architecture="{_text(row["architecture"])}">'
                   + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>", "</body>", "</html>", ""]
    return "\n".join(out)
