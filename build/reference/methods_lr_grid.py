"""Learning-rate choice on dev for the method comparison (docs/METHODS.md): runs Microsoft.ML.Peft's `method-sst2`
benchmark command on a cheap proxy of the recipe (default: 8,000 shuffled SST-2 rows, 1 epoch, seed 1) for each
method and each learning rate of its grid, records every point in build/reference/results/methods_lr_grid.json and
picks one rate per method.

Choice rule: the highest dev accuracy; rates within half a point of it (4 of 872 dev rows, well inside one seed's
noise) are ranked by the lower dev NLL. Points already in the file (same method, lr, rows, epochs, seed) are not run
again, so the script can be stopped and resumed, and a grid can be widened by passing more rates.

  python3 build/reference/methods_lr_grid.py --methods ia3,prompt,bitfit,dora,loraplus
  python3 build/reference/methods_lr_grid.py --methods houlsby --grid houlsby=1e-3,3e-3,1e-2
Needs a Release build of test/Microsoft.ML.Peft.Benchmarks (dotnet build test/Microsoft.ML.Peft.Benchmarks -c Release).
Runs are `nice -n 10` so measurement runs keep their cores. Plain python3 (no torch).
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
# METHOD_SST2_DLL: another build of the benchmarks (e.g. one made with -o while runs use the default one).
DLL = os.environ.get("METHOD_SST2_DLL") or os.path.join(ROOT, "test", "Microsoft.ML.Peft.Benchmarks", "bin", "Release", "net10.0",
                                                      "Microsoft.ML.Peft.Benchmarks.dll")
RESULTS = os.environ.get("METHODS_GRID_FILE") or os.path.join(HERE, "results", "methods_lr_grid.json")

# Three rates per method around the usual value for the method family (AdamW, batch 32): LoRA-like methods near
# LoRA's 2e-3; vector methods (IA3, norms, head) and soft prompts higher, as their papers train them; full and
# last-layer fine-tuning lower. Where a grid chose its edge, rates were added beyond it (ia3, prompt, bitfit,
# layernorm, prefix, the P-tuning encoders, last-2, FaR, LLaMA-Adapter, the three adapter rows, PiSSA, VeRA, GaLore,
# LoReFT) until the choice was inside, except for prompt tuning and LoRA+, which keep the edge rate their PyTorch
# references were run at.
DEFAULT_GRID = {
    "lora": [1e-3, 2e-3, 5e-3],
    "ia3": [1e-3, 3e-3, 1e-2, 3e-2],
    "prompt": [3e-3, 1e-2, 3e-2, 1e-1],
    "prefix": [3e-4, 1e-3, 3e-3, 1e-2, 3e-2],
    "prefix-mlp": [1e-3, 3e-3, 1e-2],
    "ptuning-mlp": [3e-4, 1e-3, 3e-3, 1e-2],
    "ptuning-lstm": [3e-4, 1e-3, 3e-3, 1e-2],
    "llama-adapter": [1e-3, 3e-3, 1e-2, 3e-2],
    "houlsby": [1e-3, 3e-3, 1e-2, 3e-2],
    "parallel": [3e-4, 1e-3, 3e-3, 1e-2],
    "sparse-adapter": [1e-3, 3e-3, 1e-2, 3e-2],
    "fusion": [1e-3, 3e-3, 1e-2],
    "bitfit": [1e-3, 3e-3, 1e-2, 3e-2],
    "head-only": [1e-3, 3e-3, 1e-2, 3e-2],
    "last-2": [3e-4, 1e-3, 3e-3, 1e-2],
    "layernorm": [3e-3, 1e-2, 3e-2],
    "full": [3e-4, 1e-3, 3e-3],
    "far": [3e-4, 1e-3, 3e-3, 1e-2, 3e-2],
    "pafi": [1e-3, 3e-3, 1e-2],
    "diff-pruning": [3e-4, 1e-3, 3e-3],
    "dora": [1e-3, 2e-3, 5e-3],
    "loraplus": [2.5e-4, 5e-4, 1e-3],
    "rslora": [5e-4, 1e-3, 2e-3],
    "pissa": [5e-4, 1e-3, 2e-3, 5e-3],
    "olora": [5e-4, 1e-3, 2e-3],
    "adalora": [1e-3, 2e-3, 5e-3],
    "vera": [1e-3, 3e-3, 1e-2, 3e-2],
    "moslora": [1e-3, 2e-3, 5e-3],
    "loha": [1e-3, 3e-3, 1e-2],
    "lokr": [1e-3, 3e-3, 1e-2],
    "qlora": [1e-3, 2e-3, 5e-3],
    "galore": [3e-4, 1e-3, 3e-3, 1e-2],
    "loreft": [1e-3, 3e-3, 1e-2, 3e-2],
    "svgd": [2e-3],  # LoRA's rate, not searched: each particle is the lora row's adapter
}


def load():
    if os.path.exists(RESULTS):
        with open(RESULTS, encoding="utf-8") as f:
            return json.load(f)
    return {"proxy": None, "points": [], "chosen": {}}


def save(data):
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    tmp = RESULTS + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, RESULTS)


def choose(points):
    """The chosen point of one method's grid (see the module docstring), or None."""
    if not points:
        return None
    best_acc = max(p["dev_accuracy"] for p in points)
    near = [p for p in points if p["dev_accuracy"] >= best_acc - 0.005]
    return min(near, key=lambda p: p["dev_nll"])


def run_point(method, lr, args):
    cmd = ["nice", "-n", "10", "dotnet", DLL, "method-sst2", "--method", method, "--lr", repr(lr), "--seed", str(args.seed),
           "--epochs", str(args.epochs), "--cache", args.cache] + (["--rows", str(args.rows)] if args.rows else [])
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise RuntimeError(f"method-sst2 --method {method} --lr {lr} failed (exit {proc.returncode})")
    point = json.loads(lines[-1][len("RESULT "):])
    point.pop("adapter_folder", None)
    point["command_wall_s"] = round(time.time() - t0, 1)
    return point


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", required=True, help="comma-separated method names, or 'all'")
    ap.add_argument("--grid", action="append", default=[], help="METHOD=lr1,lr2,... (overrides the default grid)")
    ap.add_argument("--rows", type=int, default=8000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1, help="grid points run at once")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "peft-method-sst2-cache"),
                    help="method-sst2 --cache (fusion sources)")
    args = ap.parse_args()
    if not os.path.exists(DLL):
        sys.exit(f"{DLL} not found: dotnet build test/Microsoft.ML.Peft.Benchmarks -c Release")
    grid = dict(DEFAULT_GRID)
    for item in args.grid:
        method, _, rates = item.partition("=")
        grid[method] = [float(r) for r in rates.split(",")]
    methods = list(DEFAULT_GRID) if args.methods == "all" else args.methods.split(",")
    unknown = [m for m in methods if m not in grid]
    if unknown:
        sys.exit(f"no grid for {unknown}; known: {', '.join(DEFAULT_GRID)}")

    data = load()
    data["proxy"] = {"rows": args.rows, "epochs": args.epochs, "seed": args.seed,
                     "rule": "max dev accuracy; within 0.005 of it, min dev NLL"}
    def key_of(p):
        return (p["method"], p["lr"], p["rows"], p["epochs"], p["seed"])

    have = {key_of(p) for p in data["points"]}
    todo = [(m, lr) for m in methods for lr in grid[m] if (m, lr, args.rows, args.epochs, args.seed) not in have]
    # Points run --jobs at a time (each run is itself 2-threaded); results are saved as they come.
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_point, m, lr, args): (m, lr) for m, lr in todo}
        for future in concurrent.futures.as_completed(futures):
            method, lr = futures[future]
            point = future.result()
            data["points"].append(point)
            print(f"  {method} lr {lr:g}: acc {point['dev_accuracy']:.4f} nll {point['dev_nll']:.4f} "
                  f"({point['train_wall_s']} s in steps, {point['train_cpu_s']} s CPU)", flush=True)
            save(data)
    for method in methods:
        mine = [p for p in data["points"] if p["method"] == method and p["rows"] == args.rows
                and p["epochs"] == args.epochs and p["seed"] == args.seed]
        best = choose(mine)
        data["chosen"][method] = {"lr": best["lr"], "grid": sorted(p["lr"] for p in mine),
                                  "dev_accuracy": best["dev_accuracy"], "dev_nll": best["dev_nll"]}
        print(f"{method}: chosen lr {best['lr']:g} (acc {best['dev_accuracy']:.4f}, nll {best['dev_nll']:.4f})", flush=True)
    save(data)


if __name__ == "__main__":
    main()
