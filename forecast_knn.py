"""Stage 6: roll a path forward with the KNN displacement field from an initial condition; plot it.

v̂(z) is the inverse-distance weighted mean displacement of the K nearest
embedded points (embedding scaled per dimension to [0, 1]).
"""
from dae import artifacts, cli, stages
from dae.forecast import KNNField, rollout, unit_scale
from settings import (SONG, WINDOW_SECONDS, LATENT_DIM, ALPHA, BETA, GAMMA, DELTA,  # shared settings
                      HISTORY, SEED, DATA_DIR, OUTPUT_DIR)

N_STEPS = 200            # steps to forecast
INITIAL_CONDITION = -1   # index of the starting point on the path; -1 = a fixed choice drawn with SEED
K = 5                    # neighbours averaged
EXCLUSION_RADIUS = -1    # library points within this many steps of the initial condition are never used; -1 = the window's width
ORIGINAL_RULE = False    # the original's rule instead: no exclusion, drop the nearest neighbour at every query


def main():
    cfg = cli.configure(globals())
    paths = artifacts.run_paths(cfg)
    Z, meta = stages.load_path(paths)
    Zs, _, _ = unit_scale(Z)
    radius = meta["width"] if EXCLUSION_RADIUS < 0 else EXCLUSION_RADIUS
    field = KNNField(Zs, K, exclusion=None if ORIGINAL_RULE else radius, drop_nearest=ORIGINAL_RULE)
    ic = stages.initial_condition(INITIAL_CONDITION, 0, len(Z) - 2, SEED)
    forecast = rollout(field, Zs[ic], N_STEPS, origin=ic)
    data, png, html = stages.save_forecast(paths, "knn", ic, forecast, Zs, cfg, k=K,
                                           exclusion_radius=None if ORIGINAL_RULE else radius,
                                           rule="original" if ORIGINAL_RULE else "exclusion", scaled=True)
    print(f"KNN forecast, {N_STEPS} steps from index {ic}: saved {data}, {png} and {html.name}")


if __name__ == "__main__":
    cli.run(main)
