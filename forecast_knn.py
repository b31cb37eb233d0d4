"""Stage 6: roll a path forward with the KNN displacement field from an initial condition; plot it.

v̂(z) is the inverse-distance weighted mean displacement of the K nearest
embedded points (embedding scaled per dimension to [0, 1]).
"""
import settings
from dae import cli, layout, stages, store
from dae.forecast import rollout

N_STEPS = 200            # steps to forecast
INITIAL_CONDITION = -1   # index of the starting point on the path; -1 = a fixed choice drawn with SEED
K = 5                    # neighbours averaged
EXCLUSION_RADIUS = -1    # library points within this many steps of the initial condition are never used; -1 = the window's width
ORIGINAL_RULE = False    # the original's rule instead: no exclusion, drop the nearest neighbour at every query


def main():
    cfg = cli.configure(layout.select_run(globals(), settings))
    paths = layout.run_paths(cfg)
    with store.writing(paths, "forecast_knn.py"):
        Z, Zs, meta, field, rule = stages.knn_setup(paths, K, EXCLUSION_RADIUS, ORIGINAL_RULE)
        ic = stages.initial_condition(INITIAL_CONDITION, 0, len(Z) - 2, cfg["SEED"], len(Z))
        forecast = rollout(field, Zs[ic], N_STEPS, origin=ic)
        method = "knn-original" if ORIGINAL_RULE else "knn"
        data, png, html = stages.save_forecast(paths, method, ic, forecast, Z, cfg, {"embedding": meta}, **rule)
    print(f"KNN forecast, {N_STEPS} steps from index {ic}: saved {data}, {png} and {html.name}")


if __name__ == "__main__":
    cli.run(main)
