"""Evidence that lora_sst2_reference.py's modes compute exactly our model maths: for each mode, Microsoft.ML.Peft's
`method-sst2` trains a short run (default 320 rows = 10 steps, so the adapter is no longer the identity), saves the
adapter, and the PyTorch script loads that adapter (--load-adapter) and scores dev.tsv; the two dev NLLs (872 rows,
mean nats) and accuracies must agree to float32 rounding. Head, virtual tokens, IA3 vectors, DoRA magnitudes and
LoRA matrices all come from our file, so any difference in the forward (targets, input vs output scaling, prompt
positions / mask / pooling index, DoRA's norm) shows up here. Writes results/methods_forward_check.json.

  python3 build/reference/methods_forward_check.py [--modes lora,ia3,prompt,bitfit,dora,loraplus] [--lr 1e-2]
Needs /usr/bin/python3 with torch for the reference and a Release build of the benchmarks.
"""
import argparse
import json
import os
import subprocess
import tempfile

from methods_lr_grid import DLL, HERE

TORCH_PY = "/usr/bin/python3"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", default="lora,ia3,prompt,bitfit,dora,loraplus")
    ap.add_argument("--rows", type=int, default=320)
    ap.add_argument("--lr", type=float, default=1e-2, help="large enough that 10 steps move every vector visibly")
    args = ap.parse_args()
    checks = []
    for mode in args.modes.split(","):
        folder = tempfile.mkdtemp(prefix=f"forward-check-{mode}-")
        ours = subprocess.run(["nice", "-n", "10", "dotnet", DLL, "method-sst2", "--method", mode, "--lr", repr(args.lr),
                               "--rows", str(args.rows), "--epochs", "1", "--output", folder],
                              capture_output=True, text=True, check=True).stdout
        mine = json.loads([line for line in ours.splitlines() if line.startswith("RESULT ")][-1][7:])
        ref = subprocess.run(["nice", "-n", "10", TORCH_PY, os.path.join(HERE, "lora_sst2_reference.py"), "--mode", mode,
                              "--lr", repr(args.lr), "--threads", "1", "--eval-at-init", "--eval-only",
                              "--load-adapter", folder], capture_output=True, text=True, check=True).stdout
        theirs = json.loads(ref.strip().splitlines()[-1])
        check = {"mode": mode, "adapter_tensors": theirs["loaded_adapter"]["tensors"],
                 "ours_dev_nll": mine["dev_nll"], "torch_dev_nll": theirs["init_dev_nll"],
                 "ours_dev_accuracy": mine["dev_accuracy"], "torch_dev_accuracy": theirs["init_dev_accuracy"],
                 "abs_nll_difference": round(abs(mine["dev_nll"] - theirs["init_dev_nll"]), 6)}
        checks.append(check)
        print(json.dumps(check), flush=True)
    out = os.path.join(HERE, "results", "methods_forward_check.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"rows": args.rows, "lr": args.lr, "note": "ours rounds dev_nll to 5 decimals", "checks": checks}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
