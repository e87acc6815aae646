#!/usr/bin/env bash
# SST-2 quality reference: 3 seeds x {lora, full}, 2 epochs each, with lora_sst2_reference.py.
# Writes build/reference/results/lora_sst2.json = {"runs": [one object per run], "summary": {mode: mean/std}}.
# Environment: PYTHON (default /usr/bin/python3), THREADS (default 2), SEEDS (default "1 2 3"),
# FULL_LR (default 1e-3), JOBS (runs at once, default 1; torch 1.13 is faster with THREADS=1 and JOBS=2 on 2 cores
# than with THREADS=2), EXTRA_ARGS (e.g. "--max-steps 50" to smoke-test this wrapper).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-2}
SEEDS=${SEEDS:-"1 2 3"}
FULL_LR=${FULL_LR:-1e-3}
EXTRA_ARGS=${EXTRA_ARGS:-}
mkdir -p results
lines=$(mktemp)
trap 'rm -f "$lines"' EXIT

JOBS=${JOBS:-1}
runs=$(mktemp)
for seed in $SEEDS; do
  echo "--mode lora --rank 8 --alpha 16 --targets q_proj,v_proj --lr 2e-3 --epochs 2 --seed $seed" >> "$runs"
  echo "--mode full --lr $FULL_LR --epochs 2 --seed $seed" >> "$runs"
done
# Each run prints one JSON line; with JOBS > 1 they finish in any order, which the summary below does not mind.
# shellcheck disable=SC2086  # the run arguments and EXTRA_ARGS are lists of words on purpose
xargs -P "$JOBS" -I{} sh -c "\"$PY\" lora_sst2_reference.py {} --threads $THREADS $EXTRA_ARGS" < "$runs" | tee -a "$lines"
rm -f "$runs"

"$PY" - "$lines" results/lora_sst2.json <<'PY'
import json
import statistics
import sys

runs = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.startswith("{")]
summary = {}
for mode in ("lora", "full"):
    final = [r["epochs"][-1] for r in runs if r["mode"] == mode]
    if not final:
        continue
    acc = [e["dev_accuracy"] for e in final]
    nll = [e["dev_nll"] for e in final]
    summary[mode] = {
        "runs": len(final),
        "dev_accuracy_mean": round(statistics.mean(acc), 5),
        "dev_accuracy_std": round(statistics.stdev(acc), 5) if len(acc) > 1 else 0.0,
        "dev_nll_mean": round(statistics.mean(nll), 5),
        "train_wall_s_per_epoch_mean": round(statistics.mean(
            e["train_wall_s"] for r in runs if r["mode"] == mode for e in r["epochs"]), 1),
    }
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump({"runs": runs, "summary": summary}, f, indent=2)
    f.write("\n")
print(json.dumps(summary))
PY
