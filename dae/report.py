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


def ordinal(n):
    """1 -> '1st', 2 -> '2nd', 10 -> '10th', 23 -> '23rd'."""
    n = int(n)
    tail = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{tail}"


def summary_markdown(results, variants, cfg: config.Experiment, figures, divergence: config.Divergence = None):
    """summary.md's text: the grid, failures, the answer in words, means per variant, every pair's
    paired differences, the figures (paths) and what each metric is (`divergence`: the KNN
    settings the δ curves were made with; default `config.Divergence()`)."""
    d = config.Divergence() if divergence is None else divergence
    radius = ("default exclusion radius (the window's width)" if d.exclusion_radius < 0
              else f"exclusion radius of {d.exclusion_radius} steps")
    ok = [r for r in results if r["status"] == "ok"]
    failed = [r for r in results if r["status"] != "ok"]
    songs = sorted({r["song"] for r in results})
    lines = [f"# Experiment `{cfg.name}`", "",
             f"{len(results)} trials: {len(songs)} songs ({', '.join(songs)}) x variants {', '.join(variants)} "
             f"x seeds {cfg.seeds} (window {cfg.windows} s, latent size {cfg.latent_dims}, "
             f"epochs {cfg.epochs or 'as the original'}); {len(ok)} finished, {len(failed)} failed.", ""]
    for r in failed:
        lines.append(f"- failed: `{r['key']}`: {r['error']}")
    if failed:
        lines.append("")
    lines += ["## The answer in words", "",
              "Each pair is the same song, seed, window and latent size; a win is the better value of the metric; "
              "p is the exact two-sided sign test (ties left out). Pairs from the same song share that song, "
              "so the p-values speak for these songs across seeds, not for songs in general.", ""]
    pairs = variant_pairs(variants)
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
    for (a, b), table in tables.items():
        lines += ["", f"## {a} vs {b}: paired differences ({a} - {b})", "",
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
    lines += ["Metrics: mean turning angle of the embedded path; δ_i = |ẑ_i - z_{t0+i}| of "
              f"{d.n_steps}-step KNN forecasts (K = {d.k}) from every {ordinal(d.every)} point, in the path scaled "
              f"to [0, 1] per dimension, under the {radius} and the original rule (no exclusion, nearest dropped); "
              "skill_h = 1 - mean δ_knn / mean δ_baseline at step h, the baseline being constant-velocity "
              "extrapolation ẑ_{t+i} = z_t + i (z_t - z_{t-1}) from the same initial conditions (skill 0 when both "
              "are exact); reconstruction BCE over every window (PCA: its clipped inverse transform); "
              "trustworthiness of the embedding against the flattened windows (scikit-learn, k = 10, at most "
              f"{cfg.trust_points} evenly spaced windows). Generated by `experiment.py` from the trial files.", ""]
    return "\n".join(lines)


def figures(exp_dir, results, variants):
    """δ curves with standard-error bands per variant (a panel per song plus pooled,
    a row per KNN rule) and turning angles per variant. Returns the PNG paths."""
    from dae.plotting import _pyplot
    plt = _pyplot()
    ok = [r for r in results if r["status"] == "ok"]
    if not ok:
        return []
    songs = sorted({r["song"] for r in ok})
    panels = songs + (["pooled"] if len(songs) > 1 else [])
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
            ax.set_title(f"{panel}: {rule}", fontsize=10)
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
            ax.scatter([i] * len(ys), ys, color=colours[v], marker=markers[j % len(markers)], zorder=2,
                       label=song if i == 0 else None)
        ys = [r["turning_angle"] for r in ok if r["variant"] == v]
        if ys:
            ax.hlines(np.mean(ys), i - 0.3, i + 0.3, color="k", lw=2, zorder=3)
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylabel("mean turning angle (deg), lower = smoother")
    ax.set_title("Turning angle per trial (marker: song; grey: same song and seed; bar: mean)", fontsize=10)
    ax.legend(fontsize=8)
    angle_png = Path(exp_dir) / "turning_angles.png"
    with store.atomic_path(angle_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return [delta_png, angle_png]


def save(exp_dir, results, variants, cfg: config.Experiment, divergence: config.Divergence = None):
    """Write trials.csv, summary.md and the figures into `exp_dir`. Returns their paths (CSV first)."""
    exp_dir = Path(exp_dir)
    csv_path, md_path = exp_dir / "trials.csv", exp_dir / "summary.md"
    store.save_text(csv_path, trials_csv(results))
    figs = figures(exp_dir, results, variants)
    store.save_text(md_path, summary_markdown(results, variants, cfg, figs, divergence))
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
    written = []
    for fig in ("delta_curves", "turning_angles"):
        if (exp_dir / f"{fig}.png").exists():
            target = root / "docs" / f"experiment_{name}_{fig}.png"
            with store.atomic_path(target) as tmp:
                shutil.copyfile(exp_dir / f"{fig}.png", tmp)
            written.append(target)
            md = md.replace(f"]({fig}.png)", f"](experiment_{name}_{fig}.png)")
    full = root / "docs" / f"experiment_{name}.md"
    store.save_text(full, md)
    written.append(full)
    sections = re.split(r"\n(?=## )", md)
    keep = [s.strip() for s in sections[1:]
            if s.startswith(("## The answer in words", "## Means per variant", "## R-F vs R:"))]
    part = "\n\n".join([sections[0].split("\n", 2)[2].strip(), *keep])
    part = re.sub(r"^## ", "#### ", part, flags=re.M)
    part += (f"\n\n![δ curves per variant](docs/experiment_{name}_delta_curves.png)\n\n"
             f"![Turning angles per variant](docs/experiment_{name}_turning_angles.png)\n\n"
             f"The whole summary, every pair of variants and every metric: [docs/experiment_{name}.md]"
             f"(docs/experiment_{name}.md).\n")
    if docs.splice(root / "README.md", f"experiment_{name}", part):
        written.append(root / "README.md")
    return written
