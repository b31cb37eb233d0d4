"""Comparing runs of one song: divergence curves and smoothness (used by the notebook).

Everything is read through the artifact layer: each divergence result is
checked with the chain it was made from (embedding, encoder, spectrogram), so
a stale result is refused with the stage to rerun, never plotted.
"""
from pathlib import Path

import numpy as np

from dae import embedding, layout, plotting, provenance, store
from dae.fonts import put_text
from dae.errors import UserError

DIVERGENCE_ARRAYS = ("delta", "origins", "steps", "mean", "std", "sem", "count")


def run_paths(song_dir, run):
    """The artifact paths of `run` under data/<song>/ (`song_dir`)."""
    song_dir = Path(song_dir)
    return layout.Paths(song_dir.name, song_dir.parent, run=run)


def divergence_files(song_dir):
    """The divergence results' files under data/<song>/runs/ (`song_dir`), sorted."""
    return sorted(Path(song_dir).glob("runs/*/divergence_*.npz"))


def load_result(paths, path):
    """The divergence result at `path`, of the run `paths` (a `layout.Paths`), checked with the chain
    it was made from: a dict of its arrays, its checked record (`meta`) and its run. A stale or
    damaged result is a UserError naming the stage to rerun."""
    meta = provenance.check(paths, "divergence", path=path)["divergence"]
    arrays = provenance.arrays(meta, DIVERGENCE_ARRAYS)
    return {"path": Path(path), "run": paths.run, "meta": meta, **arrays}


def load_divergence(song_dir):
    """Every divergence result under data/<song>/runs/: list of dicts (`load_result`), sorted."""
    found = [load_result(run_paths(song_dir, path.parent.name), path) for path in divergence_files(song_dir)]
    if not found:
        song = Path(song_dir).name
        raise UserError(f"no divergence results for {song} (under {song_dir}/runs): run every stage for it, "
                        f"`python pipeline.py --song <its audio file>`, or `python divergence.py --song {song}` "
                        "for a run that has an embedding")
    return found


def label(result):
    m = result["meta"]
    rule = "original rule" if m["rule"] == "original" else f"exclusion {m['exclusion_radius']}"
    return (f"{m['architecture']}, {m['latent_dim']}-D, {m['settings']['WINDOW_SECONDS']:g} s window, "
            f"K={m['settings']['K']}, {rule}")


def plot_divergence(results, path, title):
    """Mean δ per step with standard-error bars (std / sqrt(count), from the saved counts)."""
    plt = plotting._pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    for r in results:
        sem = r["std"] / np.sqrt(r["count"])
        ax.errorbar(r["steps"], r["mean"], yerr=sem, capsize=2, lw=1.5, label=label(r))
    ax.set(xlabel="forecasting step", ylabel="mean δ (distance to the true path, scaled units)")
    rates = {float(r["meta"]["points_per_second"]) for r in results if "points_per_second" in r["meta"]}
    if len(rates) == 1:                                 # one time step for every run: seconds ahead on top
        pps = rates.pop()
        top = ax.secondary_xaxis("top", functions=(lambda step: step / pps, lambda s: s * pps))
        top.set_xlabel("seconds of song ahead")
    put_text(ax.set_title, title)                       # a song's name: drawable
    ax.legend(fontsize=8)
    with store.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return fig


def smoothness_table(results):
    """One row per result: run, architecture, turning angle, δ at steps 1/5/29, growth rate."""
    return [{"run": r["run"], "architecture": r["meta"]["architecture"],
             "turning angle (deg)": round(r["meta"]["turning_angle_deg"], 2),
             **{f"δ@{k}": round(r["meta"]["delta_at"][k], 4) for k in sorted(r["meta"]["delta_at"], key=int)},
             "growth /step": round(r["meta"]["growth_per_step"], 4),
             "growth /s": round(r["meta"]["growth_per_second"], 2)} for r in results]


NO_PAIR = ("no R and R-F runs of {song} with the same window and latent size to compare: "
           "`python pipeline.py --song <its audio file>` runs both (or run each stage with --alpha 0 and without)")


def r_rf_pairs(results):
    """{(window seconds, latent size): {"R": result, "R-F": result}} for the settings that have both."""
    pairs = {}
    for r in results:
        s = r["meta"]["settings"]
        pairs.setdefault((s["WINDOW_SECONDS"], r["meta"]["latent_dim"]), {})[r["meta"]["architecture"]] = r
    return {k: v for k, v in pairs.items() if {"R", "R-F"} <= set(v)}


def plot_side_by_side(song_dir, results, path):
    """R and R-F embeddings of the same window and latent size, side by side, with their turning angles
    (`side_by_side_png`). Returns the figure."""
    pairs = r_rf_pairs(results)
    if not pairs:
        raise UserError(NO_PAIR.format(song=Path(song_dir).name))
    rows = []
    for (window, dim), both in sorted(pairs.items()):
        panels = {}
        for arch in ("R", "R-F"):
            emb = embedding.load(run_paths(song_dir, both[arch]["run"]))
            panels[arch] = {"Z": emb["Z"], "t": emb["t_center"], "turning": both[arch]["meta"]["turning_angle_deg"]}
        rows.append((window, dim, panels))
    return side_by_side_png(path, rows, Path(song_dir).name)


def side_by_side_png(path, rows, song):
    """Save the R and R-F paths of each row side by side in 3-D, coloured by time, one colour bar of
    time (m:ss) a row; each panel in its own scale (its path's box, true proportions), as the title and
    each panel's largest span say: an R-F path can be a small fraction of its R twin's size.

    rows : [(window s, latent size, {"R": panel, "R-F": panel})], a panel {"Z": (N, d) path, "t": (N,)
    window centres (s), "turning": mean turning angle (deg)}. Returns the figure."""
    plt = plotting._pyplot()
    fig = plt.figure(figsize=(11, 4.8 * len(rows) + 0.5), dpi=plotting.DPI, layout="constrained")
    grid = fig.add_gridspec(len(rows), 2)
    for row, (window, dim, panels) in enumerate(rows):
        axes = []
        for col, arch in enumerate(("R", "R-F")):
            p = panels[arch]
            t = np.asarray(p["t"], dtype=np.float64)
            P, labels, note = plotting.project3(p["Z"], t)
            lo, hi = plotting.box(P)
            ax = plotting._axes3d(fig, grid[row, col], labels, lo, hi)
            lines = plotting._time_lines(ax, P, t)
            span = float(np.ptp(P, axis=0).max())
            ax.set_title(f"{arch}, {window:g} s, {dim}-D: mean turning angle {p['turning']:.1f}°\n"
                         f"its own scale: the path spans {span:.3g}" + (f"\n{note}" if note else ""), fontsize=9)
            axes.append(ax)
        plotting.time_colorbar(fig, lines, axes)
    put_text(fig.suptitle, f"{song}: R and R-F paths coloured by time; each panel has its own scale "
                           "(its path's box)", fontsize=11)
    for ax in fig.axes:
        if ax.name == "3d":
            plotting.fit_labels(ax)
    with store.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=plotting.DPI)
    return fig
