"""Stage 5: train an MLP that predicts the displacement v from the point z (embedding space scaled to [0, 1]).

Trained on the first 80% of the path, scored on the held-out last 20% beside
a persistence baseline (v_t predicted as v_t-1).
"""
import settings  # the settings every stage shares: here they select the run
from dae import cli, config, stages

EPOCHS = 8        # as the original
BATCH_SIZE = 4    # as the original


def main():
    cfg = cli.parse(config.LatentTraining, settings, globals())
    stages.train_latent_model(cfg, "mlp")


if __name__ == "__main__":
    cli.run(main)
