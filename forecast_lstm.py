"""Stage 6: roll a path forward with the latent LSTM from an initial condition; plot it over the embedding."""
import settings  # the settings every stage shares: here they select the run
from dae import cli, config, stages

N_STEPS = 200            # steps to forecast
INITIAL_CONDITION = -1   # index of the starting point on the path; -1 = a fixed choice drawn with SEED


def main():
    cfg = cli.parse(config.Forecast, settings, globals())
    stages.forecast_latent_model(cfg, "lstm")


if __name__ == "__main__":
    cli.run(main)
