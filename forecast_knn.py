"""Stage 6: roll a path forward with the KNN displacement field from an initial condition; plot it.

v̂(z) is the inverse-distance weighted mean displacement of the K nearest
embedded points (embedding scaled per dimension to [0, 1]).
"""
import settings  # the settings every stage shares: here they select the run
from dae import cli, config, stages

N_STEPS = 200            # steps to forecast
INITIAL_CONDITION = -1   # index of the starting point on the path; -1 = a fixed choice drawn with SEED
K = 5                    # neighbours averaged
EXCLUSION_RADIUS = -1    # library points within this many steps of the initial condition are never used; -1 = the window's width
ORIGINAL_RULE = False    # the original's rule instead: no exclusion, drop the nearest neighbour at every query


def main():
    cfg = cli.parse(config.KnnForecast, settings, globals())
    stages.forecast_knn(cfg)


if __name__ == "__main__":
    cli.run(main)
