"""Experiments: every song x variant x seed (x window x latent size) through the pipeline, on Ray.

Each trial runs the stages (spectrogram, training, embedding, divergence) with
the same functions as the stage scripts, so its artifacts land in the usual run
folders and a finished stage is reused. Results are saved per trial as they end
in OUTPUT_DIR/experiments/NAME/trials/; running the same command again continues
where it stopped. The report (trials.csv, summary.md, figures) compares every
pair of variants across (song, seed) pairs.

    python experiment.py                                  # the default grid on a local Ray instance
    python experiment.py --songs path/to/folder --seeds 1,2 --variants R,R-F
    python experiment.py --address 10.0.0.5:6379          # an existing Ray cluster
"""
import divergence as divergence_stage  # the divergence stage's settings (K, EXCLUSION_RADIUS, N_STEPS, ...)
import settings  # the settings every stage shares (ALPHA, HISTORY, DATA_DIR, ...): a variant's defaults
import train_model  # the training stage's settings (LEARNING_RATE, CHUNK_SAMPLES, ...): a variant's defaults
from dae import cli, config
from dae.trials import run_experiment

SONGS = "synth-0,synth-1,synth-2"  # comma-separated songs or audio paths, or a folder (every audio file in it); synth-<n> is synthesised from seed n
VARIANTS = "R,R-F,R-FH,PCA"  # comma-separated names from VARIANT_SETTINGS, PCA (trains nothing), or NAME:SETTING=VALUE+SETTING=VALUE
SEEDS = "1,2,3"            # comma-separated training seeds
WINDOWS = "0.5"            # comma-separated window lengths in seconds
LATENT_DIMS = "3"          # comma-separated latent sizes
EPOCHS = 0                 # training epochs; 0 = as the original (6 for a 0.5 s window, 7 for 2 s)
NAME = "synth3"            # the experiment's folder: OUTPUT_DIR/experiments/NAME
ADDRESS = ""               # an existing Ray cluster (host:port, ray://host:10001 or auto); empty = a local instance
NUM_CPUS = 0               # CPUs of the local Ray instance; 0 = every core of this machine
CPUS_PER_TRIAL = 1         # Ray CPUs each trial reserves
THREADS_PER_TRIAL = 1      # TensorFlow threads per trial on Ray; 0 = TensorFlow's default
USE_RAY = True             # false: one trial at a time in this process, without Ray
WORKER_LOGS = False        # show the Ray workers' own output (training progress, warnings)
SYNTH_SECONDS = 40.0       # length of each synthesised synth-<n> song
SYNTH_RATE = 44100         # sample rate of synthesised songs
PUBLISH = False            # also copy the report into docs/experiment_NAME.md and the README's section of it
TRUST_POINTS = 1000        # trustworthiness is measured on at most this many evenly spaced windows

# Named sets of training settings: any run setting that names a run folder
# (ALPHA, BETA, GAMMA, DELTA, HISTORY, HORIZON, HORIZON_DECAY, LENGTH_WEIGHT)
# and LEARNING_RATE, CHUNK_SAMPLES, CHUNKS_PER_BATCH, ORDER, EPOCHS; the rest come from
# settings.py and train_model.py. PCA is always available and trains nothing.
VARIANT_SETTINGS = {
    "R": {"ALPHA": 0.0},
    "R-F": {"ALPHA": 0.001},
    "R-FH": {"ALPHA": 0.001, "HORIZON": 10},   # multi-step conditioning: 10-step rollouts (README, Training)
}


def main():
    cfg = cli.parse(config.Experiment, settings, globals())
    run_experiment(cfg, VARIANT_SETTINGS, training=config.Training.from_constants(settings, train_model),
                   divergence=config.Divergence.from_constants(settings, divergence_stage))


if __name__ == "__main__":
    cli.run(main)
