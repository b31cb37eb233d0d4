"""Stage 6: roll a path forward with the latent LSTM from an initial condition; plot it over the embedding."""
from dae import artifacts, cli, stages
from settings import (SONG, WINDOW_SECONDS, LATENT_DIM, ALPHA, BETA, GAMMA, DELTA,  # shared settings
                      HISTORY, SEED, DATA_DIR, OUTPUT_DIR)

N_STEPS = 200            # steps to forecast
INITIAL_CONDITION = -1   # index of the starting point on the path; -1 = a fixed choice drawn with SEED


def main():
    cfg = cli.configure(globals())
    paths = artifacts.run_paths(cfg)
    ic, (data, png, html) = stages.forecast_latent(paths, "lstm", INITIAL_CONDITION, N_STEPS, SEED, cfg)
    print(f"forecast {N_STEPS} steps from index {ic}: saved {data}, {png} and {html.name}")


if __name__ == "__main__":
    cli.run(main)
