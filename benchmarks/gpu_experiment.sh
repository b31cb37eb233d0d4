#!/usr/bin/env bash
# The experiment's benchmark grid on a GPU machine under JAX (not needed for CI).
#
#   benchmarks/gpu_experiment.sh                 # or: make experiment-gpu
#   WORKERS=8 benchmarks/gpu_experiment.sh --seconds 30 --seeds 1,2,3
#
# Runs benchmarks/bench_experiment.py with KERAS_BACKEND=jax for this checkout only (the
# reference path is TensorFlow's), WORKERS trials at a time sharing the GPU (each JAX process
# allocates GPU memory as it needs it, not 75% of it up front), and writes the trials per hour
# into the README's generated section experiment_gpu. Extra arguments go to bench_experiment.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export KERAS_BACKEND=jax
export XLA_PYTHON_CLIENT_PREALLOCATE=false
"$PY" -c 'import jax; d = jax.devices(); print("JAX devices:", d); assert d[0].platform == "gpu", "no GPU for JAX"'
exec "$PY" benchmarks/bench_experiment.py --compare false --backend jax --workers "${WORKERS:-4}" \
    --section experiment_gpu "$@"
