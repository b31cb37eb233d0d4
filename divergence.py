"""Stage 7: how fast KNN forecasts leave the true path.

From every 10th valid index, forecast 30 steps with the KNN field (all initial
conditions at once, one batched neighbour query per step) and measure
δ_i = |ẑ_i - z_{t0+i}| in the embedding scaled per dimension to [0, 1].
Saves every curve with mean, std, standard error and count, the growth rate
of mean ln δ, and the path's smoothness (mean turning angle).
"""

import settings  # the settings every stage shares: here they select the run
from dae import cli, config, stages

N_STEPS = 30             # forecast steps from each initial condition
EVERY = 10               # an initial condition at every EVERY-th valid index
K = 5                    # neighbours averaged
EXCLUSION_RADIUS = -1    # library points within this many steps of the initial condition are never used; -1 = the window's width
ORIGINAL_RULE = False    # the original's rule instead: no exclusion, drop the nearest neighbour at every query
FIT_STEPS = 10           # the growth rate is fitted to mean ln δ over steps 1..FIT_STEPS


def main():
    cfg = cli.parse(config.Divergence, settings, globals())
    stages.divergence(cfg)


if __name__ == "__main__":
    cli.run(main)
