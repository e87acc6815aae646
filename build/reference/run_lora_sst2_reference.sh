#!/usr/bin/env bash
# SST-2 quality reference: 3 seeds x {lora, full}, 2 epochs each, with lora_sst2_reference.py: the LoRA issue's
# subset of run_methods_sst2_reference.sh (which does the running, resuming and summary), written to
# build/reference/results/lora_sst2.json = {"runs": [one object per run], "summary": {mode: mean/std}}.
# Runs already in that file are kept and not run again (delete the file to run everything anew).
# Environment: PYTHON (default /usr/bin/python3), THREADS (default 2), SEEDS (default "1 2 3"),
# FULL_LR (default 1e-3), JOBS (runs at once, default 1; torch 1.13 is faster with THREADS=1 and JOBS=2 on 2 cores
# than with THREADS=2), EXTRA_ARGS (e.g. "--max-steps 50" to smoke-test this wrapper).
set -euo pipefail
cd "$(dirname "$0")"
MODES="lora full" LR_lora=2e-3 LR_full="${FULL_LR:-1e-3}" THREADS="${THREADS:-2}" OUT=results/lora_sst2.json \
  exec bash run_methods_sst2_reference.sh
