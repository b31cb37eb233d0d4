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
    """R and R-F embeddings of the same window and latent size, side by side, with their turning angles."""
    plt = plotting._pyplot()
    pairs = r_rf_pairs(results)
    if not pairs:
        raise UserError(NO_PAIR.format(song=Path(song_dir).name))
    fig = plt.figure(figsize=(10, 4.8 * len(pairs)), layout="constrained")
    for row, ((window, dim), both) in enumerate(sorted(pairs.items())):
        for col, arch in enumerate(("R", "R-F")):
            r = both[arch]
            emb = embedding.load(run_paths(song_dir, r["run"]))
            Z, t = emb["Z"], emb["t_center"]
            P, labels, note = plotting.project3(Z)
            ax = fig.add_subplot(len(pairs), 2, 2 * row + col + 1, projection="3d")
            ax.scatter(*P.T, c=t, s=1, cmap="viridis")
            ax.plot(*P.T, lw=0.4, color="0.3", alpha=0.5)
            ax.set_title(f"{arch}, {window:g} s, {dim}-D: mean turning angle "
                         f"{r['meta']['turning_angle_deg']:.1f}°" + (f"\n{note}" if note else ""), fontsize=9)
    with store.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return fig
