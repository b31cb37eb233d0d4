# Two commands for a fresh machine:  make demo  (the whole pipeline on the demo song; SONG=... for yours)
#                                    make test  (the test suite)
# Each sets up .venv with the pinned requirements first (once; again when they change).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ready

.PHONY: setup demo test bench experiment corpus experiment-corpus bench-corpus bench-experiment bench-song experiment-gpu clean

# the demo video, read small so that it adds little to `make demo`
VIDEO_DEMO := --source video --song demo-video --frame-size 36x64

$(READY): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(READY)

setup: $(READY)

# every stage on the demo song, for R-F (the default) and R (--alpha 0), then the notebook (pipeline.py);
# any song with the same settings for every stage: make demo SONG=path/to/mysong.mp3 ARGS="--window-seconds 2"
demo: $(READY)
	$(BIN)/python pipeline.py $(if $(SONG),--song "$(SONG)") $(ARGS)
ifeq ($(SONG),)
	# the bundled demo video (synthesised with numpy) through the same stages, as a video run (R-F)
	$(BIN)/python save_dataset.py $(VIDEO_DEMO)
	$(BIN)/python train_model.py --verbose 2 $(VIDEO_DEMO)
	for stage in embed_audio train_latent_lstm forecast_knn forecast_lstm divergence; do \
	  $(BIN)/python $$stage.py $(VIDEO_DEMO) || exit 1; \
	done
	$(BIN)/python play_embedding.py $(VIDEO_DEMO) --progress false
endif

test: $(READY)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests

bench: $(READY)
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_analysis.py
	$(BIN)/python benchmarks/bench_video.py
	$(BIN)/python benchmarks/bench_player.py

# 3 synthesised 40 s songs x {R, R-F, PCA} x 3 seeds on a local Ray instance (not part of demo);
# the report goes to outputs/experiments/synth3/; run it again to continue where it stopped
experiment: $(READY)
	$(BIN)/python experiment.py --publish true

# the real corpus: Debian's packaged game soundtracks (apt-get, as root; never fetched at run time),
# then data/corpus/manifest.csv and 24 deterministic 30 s clips in data/corpus/clips (corpus.py)
CORPUS_PACKAGES := singularity-music hyperrogue-music drascula-music warzone2100-music asc-music
corpus: $(READY)
	@missing=$$(for p in $(CORPUS_PACKAGES); do dpkg-query -W -f '$${Status}\n' $$p 2>/dev/null \
	  | grep -q ' installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" -ne 0 ]; then echo "error: make corpus installs $$missing with apt-get: run it as root" >&2; exit 1; fi; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
	$(BIN)/python corpus.py

# the corpus x {R, R-F, R-FH, PCA} x 3 seeds on a local Ray instance, published into the README and docs/
# (hours on 2 cores; run it again to continue where it stopped)
experiment-corpus: corpus
	$(BIN)/python experiment.py --songs data/corpus/clips --name corpus --publish true

# issue 6's training benchmark (reference against default) on 3 corpus clips, 5 seeds each
bench-corpus: corpus
	$(BIN)/python benchmarks/bench_training.py --methods reference,default --out benchmarks/results/bench_training_corpus.md \
	  --songs data/corpus/clips/singularity_a-new-journey_030s.wav,data/corpus/clips/hyperrogue_hr-domina-hunting_030s.wav,data/corpus/clips/drascula_track1_030s.wav

# trials per hour of today's path (bench_experiment.py's REFERENCE) and of this checkout, and where a
# trial's seconds go (about 15 minutes on 2 cores); both write their README sections
bench-experiment: $(READY)
	$(BIN)/python benchmarks/profile_trial.py --compare true
	$(BIN)/python benchmarks/bench_experiment.py

# a 4-minute song through pipeline.py (what make demo SONG= runs): today's (bench_song.py's REFERENCE) against
# this checkout in one run, then the reruns; writes its README section (about 20 minutes on 2 cores)
bench-song: $(READY)
	$(BIN)/python benchmarks/bench_song.py

# the benchmark grid under JAX on a GPU machine (not needed for CI): WORKERS=4 trials share the GPU
experiment-gpu: $(READY)
	PYTHON=$(BIN)/python benchmarks/gpu_experiment.sh

clean:
	rm -rf data outputs
