"""Stage 6: roll a path forward with the latent MLP from an initial condition; plot it over the embedding."""
import settings
from dae import cli, layout, stages, store

N_STEPS = 200            # steps to forecast
INITIAL_CONDITION = -1   # index of the starting point on the path; -1 = a fixed choice drawn with SEED


def main():
    cfg = cli.configure(layout.select_run(globals(), settings))
    paths = layout.run_paths(cfg)
    with store.writing(paths, "forecast_mlp.py"):
        ic, (data, png, html) = stages.forecast_latent(paths, "mlp", INITIAL_CONDITION, N_STEPS, cfg["SEED"], cfg)
    print(f"forecast {N_STEPS} steps from index {ic}: saved {data}, {png} and {html.name}")


if __name__ == "__main__":
    cli.run(main)
