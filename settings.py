"""Settings every stage shares. Change the song (or anything else) here once.

Each script imports these as the defaults of its own constants, and any of
them can be overridden on its command line, e.g.
``python train_model.py --song mysong --alpha 0``.
"""
SONG = "demo"          # data/<SONG>.wav (or any audio or video file ffmpeg decodes), or a path to one; "demo" is synthesised
WINDOW_SECONDS = 0.5   # seconds of audio summarised by one point (0.5 or 2 in the original)
LATENT_DIM = 3         # dimensions of the embedding space
ALPHA = 0.001          # forecasting-loss weight: 0 = plain autoencoder "R", > 0 = conditioned "R-F"
BETA = 1.0             # reconstruction-loss (binary cross-entropy) weight
GAMMA = 0.0            # off-centre loss (mean z^2) weight
DELTA = 0.0            # curvature loss weight
HISTORY = 45           # l: embeddings of previous windows the forecaster reads
HORIZON = 1            # H: steps the forecaster rolls forward on its own predictions in training; 1 = the original's one-step loss
HORIZON_DECAY = 1.0    # weight of step k of the horizon is HORIZON_DECAY^(k-1) (1 = all steps alike); H > 1 only
LENGTH_WEIGHT = 1.0    # weight of ln^2(|predicted| / |true| k-step displacement) next to 1 - cos; H > 1 only
SOURCE = "audio"       # "audio": embed the sound (spectrogram windows); "video": embed the pictures (a video file or a folder of numbered frames)
FRAME_SIZE = "150x268" # video: frames are read as grayscale and resized to HEIGHTxWIDTH pixels (the original's 150 x 268)
FRAME_STEP = 1         # video: keep every FRAME_STEP-th frame (1 = all)
SEED = 1337            # makes runs repeatable
DATA_DIR = "data"      # arrays, models, embeddings
OUTPUT_DIR = "outputs" # pictures, HTML, video
