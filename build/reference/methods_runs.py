"""Our rows of the method comparison (docs/METHODS.md): runs Microsoft.ML.Peft's `method-sst2` with the full recipe
(all 67,349 SST-2 rows, 2 epochs; --rows/--epochs only for smoke runs) for each method and seed at the learning rate
chosen on dev (results/methods_lr_grid.json, or --lr METHOD=X), and records every RESULT in
build/reference/results/methods_ours.json = {"runs": [...]}. Runs already there (same method, seed, lr, rows,
epochs) are skipped, so the script resumes. Plain python3 (no torch); needs a Release build of the benchmarks.

  python3 build/reference/methods_runs.py --methods lora,ia3,prompt,bitfit,dora,loraplus --seeds 1,2,3   # (a)
  python3 build/reference/methods_runs.py --methods all --seeds 1                                       # (c)
"""
import argparse
import concurrent.futures
import json
import os
import sys

from methods_lr_grid import DEFAULT_GRID, DLL, HERE, run_point

OURS = os.path.join(HERE, "results", "methods_ours.json")
GRID = os.path.join(HERE, "results", "methods_lr_grid.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", required=True, help="comma-separated method names, or 'all'")
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--lr", action="append", default=[], help="METHOD=X: use X instead of the chosen rate")
    ap.add_argument("--rows", type=int, default=0, help="0 = all rows (the recipe)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--cache", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "peft-method-sst2-cache"))
    ap.add_argument("--out", default=OURS)
    args = ap.parse_args()
    if not os.path.exists(DLL):
        sys.exit(f"{DLL} not found: dotnet build test/Microsoft.ML.Peft.Benchmarks -c Release")
    methods = list(DEFAULT_GRID) if args.methods == "all" else args.methods.split(",")
    chosen = json.load(open(GRID, encoding="utf-8")).get("chosen", {}) if os.path.exists(GRID) else {}
    rates = {m: c["lr"] for m, c in chosen.items()}
    rates.setdefault("lora", 2e-3)  # the LoRA issue's rate (samples/LoraSentiment, lora_sst2.json)
    for item in args.lr:
        method, _, value = item.partition("=")
        rates[method] = float(value)
    missing = [m for m in methods if m not in rates]
    if missing:
        sys.exit(f"no learning rate chosen for {missing}: run methods_lr_grid.py for them or pass --lr METHOD=X")

    data = json.load(open(args.out, encoding="utf-8")) if os.path.exists(args.out) else {"runs": []}
    seeds = [int(s) for s in args.seeds.split(",")]

    def done(m, seed):
        return any(r["method"] == m and r["seed"] == seed and r["lr"] == rates[m] and r["epochs"] == args.epochs
                   and (args.rows == 0 and r["rows"] == 67349 or r["rows"] == args.rows) for r in data["runs"])

    todo = [(m, s) for s in seeds for m in methods if not done(m, s)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {}
        for m, seed in todo:
            point_args = argparse.Namespace(seed=seed, rows=args.rows, epochs=args.epochs, cache=args.cache)
            futures[pool.submit(run_point, m, rates[m], point_args)] = (m, seed)
        for future in concurrent.futures.as_completed(futures):
            m, seed = futures[future]
            run = future.result()
            data["runs"].append(run)
            print(f"  {m} seed {seed} lr {rates[m]:g}: acc {run['dev_accuracy']:.4f} nll {run['dev_nll']:.4f}", flush=True)
            tmp = args.out + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2)
                f.write("\n")
            os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
