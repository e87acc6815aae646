"""Evidence that lora_sst2_reference.py's modes are our model maths and our training recipe, run to run comparable:

1. Same start, same data, same steps. A 32-row training file (the first 32 SST-2 training rows) makes every epoch one
   batch of the same rows, so batch order no longer matters (the loss is a mean). Ours runs 1 epoch — its single step
   is the warm-up step at lr 0, so the saved adapter is exactly our initial state (head, IA3 ones, prompt, LoRA A/B,
   DoRA magnitudes) — and then 4 epochs from the same seed (4 steps: lr 0, 1, 2/3, 1/3 of the peak). The PyTorch mode
   loads our initial adapter (--load-adapter), trains the same 4 epochs and scores dev. AdamW moments, bias
   correction, weight decay on matrices only, gradient clipping, the LR schedule and LoRA+'s groups all enter, so
   the two dev NLLs agree to float rounding only if the recipes match. LoRA dropout is set to 0 on both sides
   (random masks cannot match).
2. Same weights, same forward: the PyTorch mode loads our 4-step adapter and scores dev (--eval-only); it must give
   our dev NLL (targets, input vs output scaling, prompt positions / mask / pooling index, DoRA's norm).

Writes results/methods_forward_check.json. Needs /usr/bin/python3 with torch and a Release build of the benchmarks.
  python3 build/reference/methods_forward_check.py [--modes lora,ia3,prompt,bitfit,dora,loraplus]
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile

from methods_lr_grid import DLL, HERE

TORCH_PY = "/usr/bin/python3"
SHARED_SST2 = os.path.abspath(os.path.join(HERE, "..", "..", "..", "shared", "data", "sst2"))
# Large enough that 3 real steps move every kind of weight visibly.
RATES = {"lora": 1e-2, "ia3": 3e-2, "prompt": 3e-2, "bitfit": 3e-2, "dora": 1e-2, "loraplus": 2e-3}
LORA_FAMILY = {"lora", "dora", "loraplus"}


def ours(mode, lr, data, epochs, folder):
    cmd = ["nice", "-n", "10", "dotnet", DLL, "method-sst2", "--method", mode, "--lr", repr(lr), "--data", data,
           "--epochs", str(epochs), "--output", folder] + (["--lora-dropout", "0"] if mode in LORA_FAMILY else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("RESULT ")][-1][7:])


def torch_ref(mode, lr, data, extra):
    cmd = ["nice", "-n", "10", TORCH_PY, os.path.join(HERE, "lora_sst2_reference.py"), "--mode", mode, "--lr", repr(lr),
           "--threads", "1", "--data", data, "--lora-dropout", "0"] + extra
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", default="lora,ia3,prompt,bitfit,dora,loraplus")
    ap.add_argument("--epochs", type=int, default=4)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="methods-check-")
    data = os.path.join(work, "data")
    os.makedirs(data)
    with open(os.path.join(SHARED_SST2, "train.tsv"), encoding="utf-8") as src, \
            open(os.path.join(data, "train.tsv"), "w", encoding="utf-8") as dst:
        for _ in range(33):  # header + 32 rows
            dst.write(src.readline())
    shutil.copy(os.path.join(SHARED_SST2, "dev.tsv"), os.path.join(data, "dev.tsv"))

    checks = []
    for mode in args.modes.split(","):
        lr = RATES[mode]
        init_dir, trained_dir = os.path.join(work, mode + "-init"), os.path.join(work, mode + "-trained")
        start = ours(mode, lr, data, 1, init_dir)
        mine = ours(mode, lr, data, args.epochs, trained_dir)
        trained = torch_ref(mode, lr, data, ["--epochs", str(args.epochs), "--eval-at-init", "--load-adapter", init_dir])
        scored = torch_ref(mode, lr, data, ["--eval-at-init", "--eval-only", "--load-adapter", trained_dir])
        check = {
            "mode": mode, "lr": lr, "steps": args.epochs,
            "init_dev_nll": {"ours": start["dev_nll"], "torch": trained["init_dev_nll"]},
            "trained_dev_nll": {"ours": mine["dev_nll"], "torch": trained["epochs"][-1]["dev_nll"]},
            "trained_dev_accuracy": {"ours": mine["dev_accuracy"], "torch": trained["epochs"][-1]["dev_accuracy"]},
            "train_loss_last_epoch": {"ours": mine["epoch_history"][-1]["TrainLoss"], "torch": trained["epochs"][-1]["train_loss"]},
            "ours_adapter_scored_by_torch_dev_nll": scored["init_dev_nll"],
        }
        check["trained_abs_nll_difference"] = round(abs(mine["dev_nll"] - trained["epochs"][-1]["dev_nll"]), 6)
        check["forward_abs_nll_difference"] = round(abs(mine["dev_nll"] - scored["init_dev_nll"]), 6)
        checks.append(check)
        print(json.dumps(check), flush=True)
        out = os.path.join(HERE, "results", "methods_forward_check.json")
        with open(out, "w", encoding="utf-8") as f:
            json.dump({"train_rows": 32, "epochs": args.epochs, "note": "ours rounds dev NLL to 5 decimals, PyTorch "
                       "to 6 (to 5 in its per-epoch results)", "checks": checks}, f, indent=2)
            f.write("\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
