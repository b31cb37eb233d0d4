"""Stage 7: how fast KNN forecasts leave the true path.

From every 10th valid index, forecast 30 steps with the KNN field (all initial
conditions at once, one batched neighbour query per step) and measure
δ_i = |ẑ_i - z_{t0+i}| in the embedding scaled per dimension to [0, 1].
Saves every curve with mean, std, standard error and count, the growth rate
of mean ln δ, and the path's smoothness (mean turning angle).
"""
import numpy as np

import settings
from dae import artifacts, cli, stages
from dae.errors import UserError
from dae.forecast import divergence, growth_rate, turning_angle

N_STEPS = 30             # forecast steps from each initial condition
EVERY = 10               # an initial condition at every EVERY-th valid index
K = 5                    # neighbours averaged
EXCLUSION_RADIUS = -1    # library points within this many steps of the initial condition are never used; -1 = the window's width
ORIGINAL_RULE = False    # the original's rule instead: no exclusion, drop the nearest neighbour at every query
FIT_STEPS = 10           # the growth rate is fitted to mean ln δ over steps 1..FIT_STEPS

LIMITS = {"N_STEPS": (2, 10_000)}  # a growth rate needs at least two steps


def main():
    cfg = cli.configure(artifacts.select_run(globals(), settings), limits=LIMITS)
    paths = artifacts.run_paths(cfg)
    with artifacts.writing(paths, "divergence.py"):
        _divergence(paths, cfg)


def _divergence(paths, cfg):
    Z, Zs, meta, field, rule = stages.knn_setup(paths, K, EXCLUSION_RADIUS, ORIGINAL_RULE)
    origins = np.arange(0, len(Zs) - N_STEPS, EVERY)
    if len(origins) < 2:
        raise UserError(f"the path has {len(Zs)} points, too few for {N_STEPS}-step forecasts "
                        "from several initial conditions; use a longer song or a smaller --n-steps")
    delta = divergence(Zs, field, origins, N_STEPS)
    fit = min(FIT_STEPS, N_STEPS)   # the steps there are
    slope, _ = growth_rate(delta, 1, fit)
    per_second = slope * meta["points_per_second"]
    smooth = turning_angle(Z)
    tag = f"k{K}_original" if ORIGINAL_RULE else f"k{K}_x{rule['exclusion_radius']}"
    target = paths.divergence(tag)
    mean, std = delta.mean(axis=0), delta.std(axis=0)
    marks = sorted({1, min(5, N_STEPS), min(29, N_STEPS)})
    artifacts.save_npz(target, delta=delta, origins=origins, steps=np.arange(N_STEPS + 1), mean=mean, std=std,
                       sem=std / np.sqrt(len(origins)), count=np.full(N_STEPS + 1, len(origins)))
    artifacts.write_sidecar(target, "divergence", cfg, inputs={"embedding": meta}, run=paths.run, architecture=meta["architecture"],
                            latent_dim=int(Z.shape[1]), n_initial_conditions=len(origins), **rule,
                            growth_per_step=slope, growth_per_second=per_second, fit_steps=[1, fit],
                            turning_angle_deg=smooth, points_per_second=meta["points_per_second"],
                            delta_at={str(i): float(mean[i]) for i in marks})
    print(f"{paths.run}: {len(origins)} initial conditions, mean δ at steps {'/'.join(map(str, marks))}: "
          + " / ".join(f"{mean[i]:.4f}" for i in marks))
    print(f"growth of mean ln δ over steps 1-{fit}: {slope:.4f} per step = {per_second:.2f} per second; "
          f"smoothness: mean turning angle {smooth:.1f} degrees")
    print(f"saved {target}")


if __name__ == "__main__":
    cli.run(main)
