"""Stage 5: train an LSTM that predicts the displacement v from the last 20 points (embedding space scaled to [0, 1]).

Trained on the first 80% of the path, scored on the held-out last 20% beside
a persistence baseline (v_t predicted as v_t-1).
"""
import settings
from dae import cli, layout, stages, store

EPOCHS = 10        # as the original
BATCH_SIZE = 4    # as the original


def main():
    cfg = cli.configure(layout.select_run(globals(), settings))
    paths = layout.run_paths(cfg)
    with store.writing(paths, "train_latent_lstm.py"):
        report = stages.train_latent(paths, "lstm", EPOCHS, BATCH_SIZE, cfg["SEED"], cfg)
    stages.print_report(report)
    print(f"saved {paths.latent_model('lstm')}")


if __name__ == "__main__":
    cli.run(main)
