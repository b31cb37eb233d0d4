"""Stage 5: train an MLP that predicts the displacement v from the point z (embedding space scaled to [0, 1]).

Trained on the first 80% of the path, scored on the held-out last 20% beside
a persistence baseline (v_t predicted as v_t-1).
"""
from dae import artifacts, cli, stages
from settings import (SONG, WINDOW_SECONDS, LATENT_DIM, ALPHA, BETA, GAMMA, DELTA,  # shared settings
                      HISTORY, SEED, DATA_DIR, OUTPUT_DIR)

EPOCHS = 8        # as the original
BATCH_SIZE = 4    # as the original


def main():
    cfg = cli.configure(globals())
    paths = artifacts.run_paths(cfg)
    report = stages.train_latent(paths, "mlp", EPOCHS, BATCH_SIZE, SEED, cfg)
    stages.print_report(report)
    print(f"saved {paths.latent_model('mlp')}")


if __name__ == "__main__":
    cli.run(main)
