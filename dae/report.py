"""The experiment's report: the metrics of a trial, trials.csv, paired comparisons of every two
variants in numbers and in words, summary.md, two figures, and publishing it into the repository.

Everything here reads trial results (the dicts `dae.trials` saves); nothing trains or measures.
"""
import csv
import io
import itertools
import math
import re
from pathlib import Path

import numpy as np

from dae import config, stats, store
from dae.grid import PCA, pair_key

ROOT = Path(__file__).resolve().parents[1]
HORIZONS = (1, 5, 10, 29)              # forecast steps whose δ and skill are reported
RULES = (("x", False), ("o", True))   # (tag, original rule): x the default exclusion radius, o the original rule

# column, label, lower is better, how a win reads in words
METRICS = [("turning_angle", "mean turning angle (deg)", True, "smoother (lower mean turning angle)"),
           ("bce", "reconstruction BCE", True, "lower reconstruction BCE"),
           ("trustworthiness", "trustworthiness (k = 10)", False, "more trustworthy"),
           *[(f"delta_{r}_{h}", f"δ step {h}, {'original' if original else 'exclusion'} rule", True,
              f"lower δ at step {h}") for r, original in RULES for h in HORIZONS],
           *[(f"skill_{r}_{h}", f"skill h = {h}, {'original' if original else 'exclusion'} rule", False,
              f"higher skill at horizon {h}") for r, original in RULES for h in HORIZONS],
           ("growth_x", "growth of ln δ per step, exclusion rule", True, "slower growth of ln δ"),
           ("growth_o", "growth of ln δ per step, original rule", True, "slower growth of ln δ")]
CSV_FIELDS = ["key", "song", "group", "variant", "seed", "window", "latent", "status", "error", "seconds", "cpu_seconds",
              "host", "run", "n_points", "exclusion_radius", *[m[0] for m in METRICS]]


def trials_csv(results):
    """trials.csv's text: a row per trial (CSV_FIELDS), floats to 6 significant digits."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in results:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items() if k in CSV_FIELDS})
    return buf.getvalue()


def variant_pairs(variants):
    """(A, B) pairs, A compared against B: PCA is always B; otherwise the later variant is A."""
    pairs = []
    for a, b in itertools.combinations(variants, 2):
        pairs.append((a, b) if b == PCA else (b, a))
    return pairs


def compare(results, a, b):
    """Paired statistics of every metric for variant a against b over matching (song, seed, window, latent):
    {column: `stats.paired`'s dict (n, mean_diff, ci_low, ci_high, a_wins, b_wins, ties, p)}."""
    ok = [r for r in results if r["status"] == "ok"]
    by = {}
    for r in ok:
        by.setdefault(pair_key(r), {})[r["variant"]] = r
    matched = [v for v in by.values() if a in v and b in v]
    table = {}
    for col, label, lower, words in METRICS:
        xa = [m[a].get(col, float("nan")) for m in matched]
        xb = [m[b].get(col, float("nan")) for m in matched]
        table[col] = stats.paired(xa, xb, lower_is_better=lower)
    return table


# the method's two claims, as metrics of R-F against R: (column, claim, what holding means)
CLAIMS = [("turning_angle", "conditioning makes paths smoother", "lower"),
          ("delta_x_1", "conditioning lowers forecast error over the first steps (δ at step 1)", "lower"),
          ("delta_x_29", "...but over the first steps only (δ at step 29 not lower)", "not lower")]


def song_unit(r):
    """The statistical unit a trial belongs to: its song (with window and latent size when a grid
    has several, as they are other models of the song)."""
    return (r["song"], r["window"], r["latent"])


def unit_label(unit, units):
    """A unit's name in tables: the song, with w<window>/z<latent> only where the grid varies them."""
    song, window, latent = unit
    windows, latents = {u[1] for u in units}, {u[2] for u in units}
    return song + (f" w{window:g}" if len(windows) > 1 else "") + (f" z{latent}" if len(latents) > 1 else "")


def matched(results, a, b):
    """[(trial of a, trial of b)] for every (song, seed, window, latent) both variants finished."""
    by = {}
    for r in results:
        if r["status"] == "ok":
            by.setdefault(pair_key(r), {})[r["variant"]] = r
    return [(v[a], v[b]) for v in by.values() if a in v and b in v]


def compare_songs(results, a, b, columns=None):
    """Song-level statistics (`stats.song_level`: the song as the unit, its seeds averaged) of
    every metric (or `columns`) for variant a against b: {column: dict}."""
    pairs = matched(results, a, b)
    units = [song_unit(ra) for ra, _ in pairs]
    labels = [unit_label(u, units) for u in units]
    out = {}
    for col, label, lower, words in METRICS:
        if columns is not None and col not in columns:
            continue
        xa = [ra.get(col, float("nan")) for ra, _ in pairs]
        xb = [rb.get(col, float("nan")) for _, rb in pairs]
        out[col] = stats.song_level(xa, xb, labels, lower_is_better=lower) if pairs else None
    return out


def claim_verdict(s, lower_wanted=True, level=0.05):
    """'holds', 'reversed' or 'not shown' for a song-level comparison s: holds when the Wilcoxon
    p < level and the hierarchical CI lies wholly on the wanted side of 0."""
    if not s or not s["songs"]:
        return "not measured"
    sig = s["p"] < level
    if sig and (s["ci_high"] < 0 if lower_wanted else s["ci_low"] > 0):
        return "holds"
    if sig and (s["ci_low"] > 0 if lower_wanted else s["ci_high"] < 0):
        return "reversed"
    return "not shown"


def song_sentence(a, b, table):
    """One pair's answer with the song as the unit, in words from the numbers."""
    t = table.get("turning_angle")
    if not t or not t["songs"]:
        return f"{a} vs {b}: no song has both."

    def part(col, words, unit=""):
        s = table[col]
        return (f"{words} in {s['a_wins']} of {s['songs']} songs, mean difference {_fmt(s['mean_diff'], 3)}{unit} "
                f"(95% CI [{_fmt(s['ci_low'], 3)}, {_fmt(s['ci_high'], 3)}], Wilcoxon p {stats.fmt_p(s['p'])})")
    bits = [part("turning_angle", f"{a} smoother than {b}", " deg"), part("delta_x_1", "δ at step 1 lower"),
            part("delta_x_29", "δ at step 29 lower"), part("bce", "lower reconstruction BCE")]
    share = t["share_between"]
    tail = (f" Of the variance of the turning-angle difference, {_pct(share)} lies between songs and the "
            f"rest between seeds of a song." if math.isfinite(share) else "")
    return "; ".join(bits) + "." + tail


def claims_markdown(results, variants, a="R-F", b="R"):
    """The method's two claims answered for a against b, the song as the unit: a table and a verdict each."""
    if a not in variants or b not in variants:
        return []
    table = compare_songs(results, a, b, [c for c, _, _ in CLAIMS])
    lines = [f"| claim ({a} against {b}) | songs | {a} better in | mean difference | 95% hierarchical CI | "
             "Wilcoxon p | rank-biserial r | between-song share | verdict |", "|---|---|---|---|---|---|---|---|---|"]
    first = claim_verdict(table.get("delta_x_1"))
    for col, claim, wanted in CLAIMS:
        s = table[col]
        if not s or not s["songs"]:
            continue
        v = claim_verdict(s)
        if wanted == "not lower" and first != "holds":   # "only the first steps" asks nothing unless they are
            v = (f"moot: δ at step 1 {'is higher' if first == 'reversed' else 'is not shown lower'}; at step 29 "
                 + {"holds": "lower", "reversed": "higher"}.get(v, "no difference shown"))
        elif wanted == "not lower":   # the claim is that step 29 is NOT better: a lower δ there contradicts it
            v = {"holds": "contradicted (lower here too)", "reversed": "holds (higher)",
                 "not shown": "holds (no difference shown)"}.get(v, v)
        lines.append(f"| {claim} | {s['songs']} | {s['a_wins']} | {_fmt(s['mean_diff'], 3)} | "
                     f"[{_fmt(s['ci_low'], 3)}, {_fmt(s['ci_high'], 3)}] | {_fmt(s['p'], 3)} | "
                     f"{_fmt(s['rank_biserial'], 2)} | {_pct(s['share_between'])} | **{v}** |")
    return lines


def groups_markdown(results, a="R-F", b="R"):
    """a against b per group of songs (a corpus clip's package), the claims' metrics: songs, wins, mean."""
    pairs = matched(results, a, b)
    groups = sorted({ra.get("group") or "(no group)" for ra, _ in pairs})
    if len(groups) < 2:
        return []
    lines = [f"| group | songs | smoother ({a} wins) | mean Δ angle (deg) | δ1 lower ({a} wins) | mean Δ δ1 | "
             "δ29 lower | mean Δ δ29 |", "|---|---|---|---|---|---|---|---|"]
    for g in groups:
        sub = [r for ra, rb in pairs if (ra.get("group") or "(no group)") == g for r in (ra, rb)]
        t = compare_songs(sub, a, b, [c for c, _, _ in CLAIMS])
        cells = []
        for col, _, _ in CLAIMS:
            s = t[col]
            cells += [f"{s['a_wins']} of {s['songs']}", _fmt(s["mean_diff"], 3)]
        lines.append(f"| {g} | {t['turning_angle']['songs']} | " + " | ".join(cells) + " |")
    return lines


def features_markdown(results, features, a="R-F", b="R"):
    """Which song-level features go with a's win over b: Spearman's rank correlation, across songs, of
    each feature (periodicity at the bar, loudness range, b's own turning angle) with the per-song
    differences of the claims' metrics."""
    from scipy.stats import spearmanr
    pairs = matched(results, a, b)
    if not pairs:
        return []
    units = [song_unit(ra) for ra, _ in pairs]
    labels = [unit_label(u, units) for u in units]
    table = compare_songs(results, a, b, [c for c, _, _ in CLAIMS])
    songs = list(table["turning_angle"]["means"])
    unit_song = dict(zip(labels, (u[0] for u in units)))
    own = {}
    for (ra, rb), label in zip(pairs, labels):
        own.setdefault(label, []).append(rb["turning_angle"])
    rows = {"periodicity at the bar (spectrogram autocorrelation, 1-4 s)":
            [features.get(unit_song[s], {}).get("periodicity", float("nan")) for s in songs],
            "loudness range (dB, 10th to 95th percentile)":
            [features.get(unit_song[s], {}).get("loudness_range_db", float("nan")) for s in songs],
            f"{b}'s own turning angle (deg)": [float(np.mean(own[s])) for s in songs]}
    lines = [f"| song feature | " + " | ".join(f"ρ with Δ {c.replace('_x_', ' step ').replace('_', ' ')}"
                                                 for c, _, _ in CLAIMS) + " |", "|---|---|---|---|"]
    for name, x in rows.items():
        cells = []
        for col, _, _ in CLAIMS:
            y = [table[col]["means"].get(s, float("nan")) for s in songs]
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() < 4 or np.ptp(np.asarray(x)[ok]) == 0:
                cells.append("n/a")
                continue
            rho, p = spearmanr(np.asarray(x)[ok], np.asarray(y)[ok])
            cells.append(f"{rho:+.2f} (p {stats.fmt_p(p)})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def sentence(a, b, table):
    """The answer for one pair of variants, in words from the numbers."""
    def part(col, words, rule_note=""):
        s = table[col]
        return f"{words} in {s['a_wins']} of {s['n']} pairs{rule_note} (p {stats.fmt_p(s['p'])})"
    t = table["turning_angle"]
    if t["n"] == 0:
        return f"{a} vs {b}: no (song, seed) pair has both."
    bits = [part("turning_angle", f"{a} smoother than {b}"), part("bce", "lower reconstruction BCE"),
            part("trustworthiness", "more trustworthy")]
    for h in (1, 29):
        sx, so = table[f"delta_x_{h}"], table[f"delta_o_{h}"]
        bits.append(f"δ at step {h} lower in {sx['a_wins']} of {sx['n']} under the exclusion rule "
                    f"(p {stats.fmt_p(sx['p'])}), {so['a_wins']} of {so['n']} under the original rule "
                    f"(p {stats.fmt_p(so['p'])})")
    for h in (1, 29):
        sx = table[f"skill_x_{h}"]
        bits.append(f"higher skill over constant velocity at horizon {h} in {sx['a_wins']} of {sx['n']} "
                    f"(exclusion rule, p {stats.fmt_p(sx['p'])})")
    sig = significant(a, b, table)
    tail = (f" With p < 0.05 (sign test): {'; '.join(sig)}." if sig
            else " No difference reaches p < 0.05 (sign test).")
    return "; ".join(bits) + "." + tail


def significant(a, b, table, level=0.05):
    """The metrics whose sign test gives p < level, grouped, each with the variant that wins."""
    groups = {}
    for col, label, _, _ in METRICS:
        s = table[col]
        if not s["n"] or s["p"] >= level:
            continue
        winner = a if s["a_wins"] > s["b_wins"] else b
        kind, *rest = col.split("_")
        if kind in ("delta", "skill"):
            rule = "exclusion" if rest[0] == "x" else "original"
            name = f"δ under the {rule} rule at step" if kind == "delta" else f"skill under the {rule} rule at horizon"
            groups.setdefault((name, winner), []).append(rest[1])
        else:
            groups.setdefault((label.split(" (")[0], winner), [])
    out = []
    for (name, winner), steps in groups.items():
        where = f"{'s' if len(steps) > 1 else ''} {', '.join(steps)}" if steps else ""
        out.append(f"{name}{where} ({winner} better)")
    return out


def _fmt(x, digits=4):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a" if x is None or math.isnan(x) else ("-inf" if x < 0 else "inf")
    return f"{x:.{digits}g}"


def _pct(share):
    """A share in [0, 1] as a percentage: '100%', '25%', '3.7%', '0%'; '' when not known."""
    if share is None or not math.isfinite(share):
        return ""
    x = 100 * share
    return f"{x:.0f}%" if x >= 10 or x == 0 else f"{x:.2g}%"


def ordinal(n):
    """1 -> '1st', 2 -> '2nd', 10 -> '10th', 23 -> '23rd'."""
    n = int(n)
    tail = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{tail}"


def command(cfg: config.Experiment):
    """The experiment.py command line that makes this experiment: every grid setting that differs
    from its default (where to run it and whether to publish left out)."""
    default = config.Experiment()
    skip = {"address", "num_cpus", "use_ray", "worker_logs", "publish"}
    args = [f"--{f.replace('_', '-')} {getattr(cfg, f)}" for f in cfg.names()
            if f not in skip and getattr(cfg, f) != getattr(default, f)]
    return " ".join(["python experiment.py", *args])


def summary_markdown(results, variants, cfg: config.Experiment, figures, divergence: config.Divergence = None,
                     features=None, runs=None):
    """summary.md's text: the grid and its command, failures, the answer in words with the song as
    the unit (the claims, every pair, by group, song features), the seed pairs as a secondary view,
    means per variant, every pair's song-level and seed-pair differences, the figures (paths), what
    each metric is (`divergence`: the KNN settings the δ curves were made with; default
    `config.Divergence()`) and the corpus clips the trials name. features : {song: its features};
    runs : the command's runs so far ({seconds, trials_run, cpus}), for its wall time."""
    d = config.Divergence() if divergence is None else divergence
    radius = ("default exclusion radius (the window's width)" if d.exclusion_radius < 0
              else f"exclusion radius of {d.exclusion_radius} steps")
    ok = [r for r in results if r["status"] == "ok"]
    failed = [r for r in results if r["status"] != "ok"]
    songs = sorted({r["song"] for r in results})
    lines = [f"# Experiment `{cfg.name}`", "",
             f"{len(results)} trials: {len(songs)} songs ({', '.join(songs)}) x variants {', '.join(variants)} "
             f"x seeds {cfg.seeds} (window {cfg.windows} s, latent size {cfg.latent_dims}, "
             f"epochs {cfg.epochs or 'as the original'}); {len(ok)} finished, {len(failed)} failed.", "",
             f"Command: `{command(cfg)}`", ""]
    if runs:
        wall = sum(r["seconds"] for r in runs)
        done = sum(r["trials_run"] for r in runs)
        cpus = " / ".join(sorted({str(r["cpus"]) for r in runs}))
        lines += [f"Wall time: {wall / 3600:.2f} h over {len(runs)} run{'s' if len(runs) > 1 else ''} of the command "
                  f"on {cpus} CPUs: {done} trials run, "
                  f"{done / (wall / 3600):.0f} trials per hour" + (" (the rest were already done)"
                                                                    if done < len(results) else "") + ".", ""]
    for r in failed:
        lines.append(f"- failed: `{r['key']}`: {r['error']}")
    if failed:
        lines.append("")
    lines += ["## The answer in words", "",
              "The unit is the song: each song's paired differences (same seed, window and latent size) are "
              "averaged over its seeds, the Wilcoxon signed-rank test runs across songs, and the 95% CI of the "
              "mean difference is a hierarchical bootstrap (songs resampled, then seeds within each song). "
              "A claim holds when p < 0.05 and the CI lies wholly on its side of 0.", ""]
    claims = claims_markdown(results, variants)
    if claims:
        lines += claims + [""]
    pairs = variant_pairs(variants)
    song_tables = {(a, b): compare_songs(results, a, b) for a, b in pairs}
    for (a, b), table in song_tables.items():
        lines.append(f"- **{a} vs {b}:** {song_sentence(a, b, table)}")
    groups = groups_markdown(results)
    if groups:
        lines += ["", "## By group of songs (R-F against R)", "",
                  "Each corpus clip's group is its package. A row counts the songs of that group where R-F is "
                  "better, and the mean over them of the per-song difference (R-F - R).", ""] + groups
    feats = features_markdown(results, features or {})
    if feats and len({song_unit(r) for r in ok}) >= 4:
        lines += ["", "## Song features that go with a win (R-F against R)", "",
                  "Spearman's ρ across songs between a feature of the song and the song's mean difference "
                  "R-F - R: a negative ρ with Δ turning angle means R-F gains more smoothness on songs with more "
                  "of that feature.", ""] + feats
    lines += ["", "## Seed pairs (secondary view)", "",
              "Each pair is one song and seed; a win is the better value of the metric; p is the exact "
              "two-sided sign test (ties left out). Pairs of one song share that song, so these p-values speak "
              "for these songs across seeds, not for songs in general.", ""]
    tables = {(a, b): compare(results, a, b) for a, b in pairs}
    for (a, b), table in tables.items():
        lines.append(f"- **{a} vs {b}:** {sentence(a, b, table)}")
    lines += ["", "## Means per variant", "",
              "| variant | trials | turning angle (deg) | BCE | trustworthiness | δ1 / δ29 exclusion | "
              "δ1 / δ29 original | skill 1 / 29 exclusion | skill 1 / 29 original |", "|---|---|---|---|---|---|---|---|---|"]
    for v in variants:
        rs = [r for r in ok if r["variant"] == v]

        def m(col):
            vals = np.array([r[col] for r in rs], dtype=float)
            vals = vals[np.isfinite(vals)]
            return float(vals.mean()) if vals.size else float("nan")
        lines.append(f"| {v} | {len(rs)} | {_fmt(m('turning_angle'), 3)} | {_fmt(m('bce'))} | "
                     f"{_fmt(m('trustworthiness'), 3)} | {_fmt(m('delta_x_1'), 3)} / {_fmt(m('delta_x_29'), 3)} | "
                     f"{_fmt(m('delta_o_1'), 3)} / {_fmt(m('delta_o_29'), 3)} | {_fmt(m('skill_x_1'), 3)} / "
                     f"{_fmt(m('skill_x_29'), 3)} | {_fmt(m('skill_o_1'), 3)} / {_fmt(m('skill_o_29'), 3)} |")
    for (a, b), table in song_tables.items():
        lines += ["", f"## {a} vs {b}: song-level differences ({a} - {b})", "",
                  "| metric | songs | mean of song means | 95% hierarchical CI | "
                  f"{a} better (songs) | {b} better | Wilcoxon p | rank-biserial r | d_z | between-song share |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for col, label, lower, _ in METRICS:
            st = table[col]
            if not st or not st["songs"]:
                continue
            lines.append(f"| {label} ({'lower' if lower else 'higher'} is better) | {st['songs']} | "
                         f"{_fmt(st['mean_diff'])} | [{_fmt(st['ci_low'])}, {_fmt(st['ci_high'])}] | {st['a_wins']} | "
                         f"{st['b_wins']} | {_fmt(st['p'], 3)} | {_fmt(st['rank_biserial'], 2)} | {_fmt(st['dz'], 2)} | "
                         f"{_pct(st['share_between'])} |")
    for (a, b), table in tables.items():
        lines += ["", f"## {a} vs {b}: seed-pair differences ({a} - {b})", "",
                  f"| metric | pairs | mean difference | 95% bootstrap CI | {a} wins | {b} wins | ties | sign-test p |",
                  "|---|---|---|---|---|---|---|---|"]
        for col, label, lower, _ in METRICS:
            s = table[col]
            lines.append(f"| {label} ({'lower' if lower else 'higher'} is better) | {s['n']} | {_fmt(s['mean_diff'])} | "
                         f"[{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}] | {s['a_wins']} | {s['b_wins']} | {s['ties']} | "
                         f"{_fmt(s['p'], 3)} |")
    lines += ["", "## Figures", ""]
    for f in figures:
        lines.append(f"![{f.stem}]({f.name})")
        lines.append("")
    clips = {}
    for r in results:
        if r.get("clip"):
            clips[r["song"]] = r["clip"]
    if clips:
        lines += ["## The corpus", "",
                  f"{len(clips)} clips from {len({c['package'] for c in clips.values()})} Debian packages, installed by "
                  "`make corpus` and cut by corpus.py (its manifest: data/corpus/manifest.csv).", "",
                  "| clip | package | source file | from | licence | clip sha256 |", "|---|---|---|---|---|---|"]
        for song, c in sorted(clips.items()):
            lines.append(f"| {song} | {c['package']} {c['version']} | {Path(c['source']).name} | "
                         f"{c['offset_seconds']:g} s | {c['licence']} | `{c.get('sha256', '')[:12]}` |")
        lines.append("")
    lines += ["Metrics: mean turning angle of the embedded path; δ_i = |ẑ_i - z_{t0+i}| of "
              f"{d.n_steps}-step KNN forecasts (K = {d.k}) from every {ordinal(d.every)} point, in the path scaled "
              f"to [0, 1] per dimension, under the {radius} and the original rule (no exclusion, nearest dropped); "
              "skill_h = 1 - mean δ_knn / mean δ_baseline at step h, the baseline being constant-velocity "
              "extrapolation ẑ_{t+i} = z_t + i (z_t - z_{t-1}) from the same initial conditions (skill 0 when both "
              "are exact); reconstruction BCE over every window (PCA: its clipped inverse transform); "
              "trustworthiness of the embedding against the flattened windows (scikit-learn, k = 10, at most "
              f"{cfg.trust_points} evenly spaced windows). Generated by `experiment.py` from the trial files.", ""]
    return "\n".join(lines)


SONG_PANELS = 6   # up to this many songs, the δ curves get a panel per song and the turning angles a marker each


def figures(exp_dir, results, variants):
    """δ curves with standard-error bands per variant (a panel per song plus pooled, or only the
    pooled one past SONG_PANELS songs, whose spread the forest plots show; a row per KNN rule)
    and turning angles per variant. Returns the PNG paths."""
    from dae.plotting import _pyplot
    plt = _pyplot()
    ok = [r for r in results if r["status"] == "ok"]
    if not ok:
        return []
    songs = sorted({r["song"] for r in ok})
    each = len(songs) <= SONG_PANELS
    panels = (songs if each else []) + (["pooled"] if len(songs) > 1 else [])
    colours = {v: plt.cm.tab10(i % 10) for i, v in enumerate(variants)}
    fig, axes = plt.subplots(2, len(panels), figsize=(4 * len(panels), 7), squeeze=False, sharex=True,
                             layout="constrained")
    for row, (tag, rule) in enumerate((("x", "exclusion rule"), ("o", "original rule"))):
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            for v in variants:
                rs = [r for r in ok if r["variant"] == v and (panel == "pooled" or r["song"] == panel)]
                if not rs:
                    continue
                c = [r["curves"][tag] for r in rs]
                mean, se = stats.pooled_curve([x["mean"] for x in c], [x["std"] for x in c],
                                              [[x["count"]] * len(x["mean"]) for x in c])
                steps = np.arange(len(mean))
                ax.plot(steps, mean, color=colours[v], label=f"{v} ({len(rs)})")
                ax.fill_between(steps, mean - se, mean + se, color=colours[v], alpha=0.25)
            ax.set_title(f"{panel if each or panel != 'pooled' else f'{len(songs)} songs pooled'}: {rule}",
                         fontsize=10)
            ax.set_xlabel("forecast step")
            if col == 0:
                ax.set_ylabel("mean δ (scaled path)")
            ax.legend(fontsize=8)
    fig.suptitle("KNN forecast divergence per variant (bands: standard error over every initial condition)")
    delta_png = Path(exp_dir) / "delta_curves.png"
    with store.atomic_path(delta_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(1.8 * len(variants) + 2, 4), layout="constrained")
    markers = "osD^v<>p*h"
    pairs = {}
    for r in ok:
        pairs.setdefault(pair_key(r), {})[r["variant"]] = r["turning_angle"]
    for (song, *_), vals in pairs.items():
        xs = [i for i, v in enumerate(variants) if v in vals]
        ax.plot(xs, [vals[variants[i]] for i in xs], color="0.7", lw=0.8, zorder=1)
    for i, v in enumerate(variants):
        for j, song in enumerate(songs):
            ys = [r["turning_angle"] for r in ok if r["variant"] == v and r["song"] == song]
            ax.scatter([i] * len(ys), ys, color=colours[v], marker=markers[j % len(markers)] if each else "o",
                       s=None if each else 10, zorder=2, label=song if i == 0 and each else None)
        ys = [r["turning_angle"] for r in ok if r["variant"] == v]
        if ys:
            ax.hlines(np.mean(ys), i - 0.3, i + 0.3, color="k", lw=2, zorder=3)
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylabel("mean turning angle (deg), lower = smoother")
    ax.set_title(f"Turning angle per trial ({'marker: song; ' if each else f'{len(songs)} songs; '}"
                 "grey: same song and seed; bar: mean)", fontsize=10)
    if each:
        ax.legend(fontsize=8)
    angle_png = Path(exp_dir) / "turning_angles.png"
    with store.atomic_path(angle_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return [delta_png, angle_png]


def forest_pairs(variants, base="R"):
    """The pairs a forest plot shows: every trained variant against `base` (R-F and R-FH against R)."""
    return [(v, base) for v in variants if base in variants and v not in (base, PCA)]


def forest(exp_dir, results, variants, column, claim):
    """A forest plot of one claim's metric: a row per song (sorted by the first pair's mean), each
    pair's seed differences as dots, their mean as a marker on the seeds' range, and at the bottom
    the mean over songs with its hierarchical-bootstrap CI. Returns the PNG path, or None."""
    from dae.plotting import _pyplot
    pairs = forest_pairs(variants)
    if not pairs:
        return None
    plt = _pyplot()
    label = next(m[1] for m in METRICS if m[0] == column)
    tables = {(a, b): compare_songs(results, a, b, [column])[column] for a, b in pairs}
    first = tables[pairs[0]]
    if not first or not first["songs"]:
        return None
    songs = sorted(first["means"], key=first["means"].get)
    group = {}
    n = len(songs)
    fig, ax = plt.subplots(figsize=(8, 2.2 + 0.28 * (n + 2)), layout="constrained")
    colours = [plt.cm.tab10(i) for i in (3, 1, 2, 4, 5)]
    offset = np.linspace(-0.22, 0.22, len(pairs)) if len(pairs) > 1 else [0.0]
    for k, ((a, b), c) in enumerate(zip(pairs, colours)):
        s = tables[(a, b)]
        per, both = {}, matched(results, a, b)
        units = [song_unit(ra) for ra, _ in both]
        for (ra, rb), u in zip(both, units):
            per.setdefault(unit_label(u, units), []).append(ra[column] - rb[column])
            group.setdefault(unit_label(u, units), ra.get("group") or "")
        for i, song in enumerate(songs):
            d = np.asarray(per.get(song, []), dtype=float)
            d = d[np.isfinite(d)]
            if not d.size:
                continue
            y = n + 1 - i + offset[k]
            ax.plot([d.min(), d.max()], [y, y], color=c, lw=1.2)
            ax.scatter(d, [y] * d.size, color=c, s=9, alpha=0.6, zorder=2)
            ax.scatter([d.mean()], [y], color=c, marker="D", s=28, zorder=3,
                       label=f"{a} − {b}" if i == 0 else None)
        y = offset[k]
        ax.errorbar([s["mean_diff"]], [y], xerr=[[s["mean_diff"] - s["ci_low"]], [s["ci_high"] - s["mean_diff"]]],
                    color=c, marker="D", ms=7, capsize=4, lw=2)
    ax.axvline(0, color="k", lw=0.8)
    ax.axhline(0.6, color="0.6", lw=0.6)
    names = [f"{sg} ({group[sg].removesuffix('-music')})" if group.get(sg) else sg for sg in songs]
    ax.set_yticks([n + 1 - i for i in range(n)] + [0], names + ["all songs (95% hierarchical CI)"], fontsize=8)
    lower = next(m[2] for m in METRICS if m[0] == column)
    ax.set_xlabel(f"difference in {label} (variant − {pairs[0][1]}); "
                  f"{'left' if lower else 'right'} of 0: the variant is better")
    ax.set_title(f"Claim: {claim}.\nOne row per song: its seeds (dots, range) and their mean (diamond)",
                 fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    path = Path(exp_dir) / f"forest_{column}.png"
    with store.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def save(exp_dir, results, variants, cfg: config.Experiment, divergence: config.Divergence = None, features=None,
         runs=None):
    """Write trials.csv, summary.md and the figures (a forest plot per claim, δ curves, turning
    angles) into `exp_dir`; `features`: {song: `dae.features.song_features`}. Returns their paths
    (CSV first)."""
    exp_dir = Path(exp_dir)
    csv_path, md_path = exp_dir / "trials.csv", exp_dir / "summary.md"
    store.save_text(csv_path, trials_csv(results))
    figs = [f for f in (forest(exp_dir, results, variants, col, claim) for col, claim, _ in CLAIMS) if f]
    figs += figures(exp_dir, results, variants)
    store.save_text(md_path, summary_markdown(results, variants, cfg, figs, divergence, features, runs))
    return [csv_path, md_path, *figs]


def publish(exp_dir, name, root=ROOT):
    """Copy an experiment's report into the repository: docs/experiment_<name>.md
    (the whole summary) with its figures, and the README's generated section
    `experiment_<name>` (the words, the means, R-F vs R and the figures), if the
    README has one. Returns the files written."""
    import shutil
    from dae import docs
    exp_dir, root = Path(exp_dir), Path(root)
    md = (exp_dir / "summary.md").read_text()
    sections = re.split(r"\n(?=## )", md)
    keep = [s.strip() for s in sections[1:]
            if s.startswith(("## The answer in words", "## By group", "## Song features", "## Means per variant",
                             "## R-F vs R: song-level"))]
    part = "\n\n".join([sections[0].split("\n", 2)[2].strip(), *keep])
    part = re.sub(r"^## ", "#### ", part, flags=re.M)
    part += "".join(f"\n\n![{claim}](forest_{col}.png)" for col, claim, _ in CLAIMS
                    if (exp_dir / f"forest_{col}.png").exists())
    part += "".join(f"\n\n![{alt}]({fig}.png)" for fig, alt in
                    (("delta_curves", "δ curves per variant"), ("turning_angles", "Turning angles per variant"))
                    if (exp_dir / f"{fig}.png").exists())
    part += (f"\n\nThe whole summary, every pair of variants and every metric: [docs/experiment_{name}.md]"
             f"(docs/experiment_{name}.md).\n")
    written = []
    for fig in sorted(f.name for f in exp_dir.glob("*.png") if f"]({f.name})" in md + part):
        target = root / "docs" / f"experiment_{name}_{fig}"
        with store.atomic_path(target) as tmp:
            shutil.copyfile(exp_dir / fig, tmp)
        written.append(target)
        md = md.replace(f"]({fig})", f"](experiment_{name}_{fig})")
        part = part.replace(f"]({fig})", f"](docs/experiment_{name}_{fig})")
    full = root / "docs" / f"experiment_{name}.md"
    store.save_text(full, md)
    written.append(full)
    if docs.splice(root / "README.md", f"experiment_{name}", part):
        written.append(root / "README.md")
    return written
