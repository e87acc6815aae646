#!/usr/bin/env bash
# SST-2 PyTorch references of the method comparison (docs/METHODS.md): SEEDS x MODES with lora_sst2_reference.py,
# the LoRA issue's recipe (all rows, 2 epochs, batch 32, max length 64, warm-up 6 %, weight decay 0.01, clip 1.0).
# Writes build/reference/results/methods_sst2.json = {"runs": [one object per run], "summary": {mode: mean/std}}, the
# shape of results/lora_sst2.json; runs already in that file (same mode, seed and lr, not stopped early) are kept and
# not run again, so the script can be resumed.
# Environment:
#   MODES      (default "ia3 prompt bitfit dora loraplus"; also lora, full)
#   LR_<mode>  peak learning rate per mode, e.g. LR_ia3=1e-2 (defaults: the rates chosen on dev for ours, see
#              results/methods_lr_grid.json; LR_lora=2e-3, LR_full=1e-3)
#   SEEDS      (default "1 2 3"), JOBS (runs at once, default 1), THREADS (torch threads per run, default 1:
#              torch 1.13 is faster with THREADS=1 and JOBS=2 on 2 cores), PYTHON (default /usr/bin/python3),
#   EXTRA_ARGS e.g. "--max-steps 30" to smoke-test (such runs are not kept for the summary's resume check)
#   OUT        result file (default results/methods_sst2.json)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-/usr/bin/python3}
MODES=${MODES:-"ia3 prompt bitfit dora loraplus"}
SEEDS=${SEEDS:-"1 2 3"}
JOBS=${JOBS:-1}
THREADS=${THREADS:-1}
EXTRA_ARGS=${EXTRA_ARGS:-}
OUT=${OUT:-results/methods_sst2.json}
: "${LR_lora:=2e-3}" "${LR_full:=1e-3}"
: "${LR_ia3:=3e-3}" "${LR_prompt:=3e-3}" "${LR_bitfit:=3e-3}" "${LR_dora:=2e-3}" "${LR_loraplus:=1e-3}"
mkdir -p results

lines=$(mktemp)
runs=$(mktemp)
trap 'rm -f "$lines" "$runs"' EXIT
for seed in $SEEDS; do
  for mode in $MODES; do
    var="LR_$mode"
    lr=${!var:-}
    if [ -z "$lr" ]; then echo "no learning rate for mode $mode: set $var" >&2; exit 2; fi
    # Skip a run the result file already holds in full.
    if [ -f "$OUT" ] && "$PY" - "$OUT" "$mode" "$seed" "$lr" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1], encoding="utf-8"))["runs"]
mode, seed, lr = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
sys.exit(0 if any(r["mode"] == mode and r["seed"] == seed and r["lr"] == lr and "stopped_early_at_step" not in r
                  for r in runs) else 1)
PY
    then
      echo "kept: $mode seed $seed lr $lr (already in $OUT)" >&2
      continue
    fi
    echo "--mode $mode --lr $lr --epochs 2 --seed $seed" >> "$runs"
  done
done

# Each run prints one JSON line; with JOBS > 1 they finish in any order, which the summary does not mind.
# shellcheck disable=SC2086  # the run arguments and EXTRA_ARGS are lists of words on purpose
xargs -P "$JOBS" -I{} sh -c "nice -n 10 \"$PY\" lora_sst2_reference.py {} --threads $THREADS $EXTRA_ARGS" < "$runs" | tee -a "$lines"

"$PY" - "$lines" "$OUT" <<'PY'
import json
import os
import statistics
import sys

new = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.startswith("{")]
old = json.load(open(sys.argv[2], encoding="utf-8"))["runs"] if os.path.exists(sys.argv[2]) else []
key = lambda r: (r["mode"], r["seed"], r["lr"], "stopped_early_at_step" in r)
runs = {key(r): r for r in old + new}.values()
runs = sorted(runs, key=lambda r: (r["mode"], r["seed"], r["lr"]))
summary = {}
for mode in sorted({r["mode"] for r in runs}):
    full = [r for r in runs if r["mode"] == mode and "stopped_early_at_step" not in r]
    if not full:
        continue
    final = [r["epochs"][-1] for r in full]
    acc = [e["dev_accuracy"] for e in final]
    nll = [e["dev_nll"] for e in final]
    summary[mode] = {
        "runs": len(final),
        "lr": sorted({r["lr"] for r in full}),
        "seeds": [r["seed"] for r in full],
        "trainable_params": full[0]["trainable_params"],
        "dev_accuracy_mean": round(statistics.mean(acc), 5),
        "dev_accuracy_std": round(statistics.stdev(acc), 5) if len(acc) > 1 else 0.0,
        "dev_nll_mean": round(statistics.mean(nll), 5),
        "train_wall_s_per_epoch_mean": round(statistics.mean(e["train_wall_s"] for r in full for e in r["epochs"]), 1),
    }
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump({"runs": runs, "summary": summary}, f, indent=2)
    f.write("\n")
print(json.dumps(summary))
PY
