"""Stage 7: how fast KNN forecasts leave the true path.

From every 10th valid index, forecast 30 steps with the KNN field (all initial
conditions at once, one batched neighbour query per step) and measure
δ_i = |ẑ_i - z_{t0+i}| in the embedding scaled per dimension to [0, 1].
Saves every curve with mean, std, standard error and count, the growth rate
of mean ln δ, and the path's smoothness (mean turning angle).
"""

import settings
from dae import cli, layout, stages, store

N_STEPS = 30             # forecast steps from each initial condition
EVERY = 10               # an initial condition at every EVERY-th valid index
K = 5                    # neighbours averaged
EXCLUSION_RADIUS = -1    # library points within this many steps of the initial condition are never used; -1 = the window's width
ORIGINAL_RULE = False    # the original's rule instead: no exclusion, drop the nearest neighbour at every query
FIT_STEPS = 10           # the growth rate is fitted to mean ln δ over steps 1..FIT_STEPS

LIMITS = {"N_STEPS": (2, 10_000)}  # a growth rate needs at least two steps


def main():
    cfg = cli.configure(layout.select_run(globals(), settings), limits=LIMITS)
    paths = layout.run_paths(cfg)
    with store.writing(paths, "divergence.py"):
        _divergence(paths, cfg)


def _divergence(paths, cfg):
    target, delta, origins, facts = stages.divergence_run(
        paths, cfg, k=K, exclusion_radius=EXCLUSION_RADIUS, original_rule=ORIGINAL_RULE, n_steps=N_STEPS,
        every=EVERY, fit_steps=FIT_STEPS)
    marks = [int(i) for i in facts["delta_at"]]
    print(f"{paths.run}: {len(origins)} initial conditions, mean δ at steps {'/'.join(map(str, marks))}: "
          + " / ".join(f"{facts['delta_at'][str(i)]:.4f}" for i in marks))
    print(f"growth of mean ln δ over steps 1-{facts['fit_steps'][1]}: {facts['growth_per_step']:.4f} per step = "
          f"{facts['growth_per_second']:.2f} per second; "
          f"smoothness: mean turning angle {facts['turning_angle_deg']:.1f} degrees")
    print(f"saved {target}")


if __name__ == "__main__":
    cli.run(main)
