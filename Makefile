# Two commands for a fresh machine:  make demo  (the whole pipeline on the demo song)
#                                    make test  (the test suite)
# Each sets up .venv with the pinned requirements first (once; again when they change).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ready

.PHONY: setup demo test bench clean

$(READY): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(READY)

setup: $(READY)

demo: $(READY)
	$(BIN)/python save_dataset.py
	$(BIN)/python train_model.py --verbose 2
	$(BIN)/python embed_audio.py
	$(BIN)/python train_model.py --verbose 2 --alpha 0
	$(BIN)/python embed_audio.py --alpha 0

test: $(READY)
	$(BIN)/python -m pytest -q -n 2 tests

bench: $(READY)
	$(BIN)/python benchmarks/bench_training.py

clean:
	rm -rf data outputs
