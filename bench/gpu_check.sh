#!/usr/bin/env bash
# One prepared check of the GPU path on a machine with CUDA, PyTorch and Triton (no network
# needed): every mode of the Triton path against the numpy engine, the 16 x 128^3 int16 ->
# float32 benchmark against a copy, peers, a stream-sync probe and launch counts, written
# with the card's name to bench/gpu_latest.md (see bench/gpu_check.py).  Under 5 minutes.
#
#   bash bench/gpu_check.sh                 # on the GPU machine, from a copy of the repository
#   bash bench/gpu_check.sh --dry-run --out /tmp/gpu_dry.md   # anywhere: tiny, interpreted
#
# Runs the checkout's own sources (src/ first on PYTHONPATH), nothing installed.  PYTHON
# picks the interpreter (default: python3).  Exit status 1 if a result is wrong or a
# section failed; 124 if the whole check ran past its 295 s.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
# The CPU engine's parallel kernels from the first call, as the benchmarks time it.
export RSGT_FAST_COMPILE_AFTER="${RSGT_FAST_COMPILE_AFTER:-0}"
exec timeout --kill-after=5 295 "${PYTHON:-python3}" bench/gpu_check.py "$@"
