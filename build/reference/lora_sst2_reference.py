"""Quality reference for LoRA in plain PyTorch: stories260K + a classification head fine-tuned on GLUE SST-2.

Recipe (the C# sample should match it):
  data     ../shared/data/sst2/train.tsv (all 67,349 rows) -> dev.tsv (872 rows); sentence stripped of its trailing
           space, ids = [BOS] + sentencepiece(tokenizer.model), truncated to --max-len (64) tokens in total
  model    stories260K backbone (model.safetensors via safetensors_io) + score = Linear(64 -> 2, no bias),
           N(0, 0.02) init, read at the last real token (right padding, pad id 0, masked keys) as in
           HF LlamaForSequenceClassification
  loss     mean cross-entropy over the batch
  optim    AdamW (betas 0.9/0.999, eps 1e-8, weight decay 0.01 on matrices only), batch 32, shuffled every epoch
           with torch.Generator(seed), linear warm-up over ceil(6% of all steps) then linear decay to 0,
           gradient-norm clipping at --max-grad-norm (1.0, the HF Trainer default)
  lora     --mode lora: LoRA on --targets (q_proj,v_proj) in all 5 layers, rank 8, alpha 16 (scaling 2),
           dropout 0.05 on the LoRA input, A Kaiming-uniform(a=sqrt(5)), B zero; trainable = LoRA A/B + score
  full     --mode full: every parameter trainable (embeddings included)

Prints one JSON line: per epoch dev accuracy, dev NLL (mean cross-entropy, nats), mean train loss and wall times.

  /usr/bin/python3 build/reference/lora_sst2_reference.py --mode lora --rank 8 --alpha 16 --targets q_proj,v_proj \
      --lr 2e-3 --epochs 2 --seed 1 --threads 2
  /usr/bin/python3 build/reference/lora_sst2_reference.py --mode full --lr 1e-3 --epochs 2 --seed 1 --threads 2
  add --max-steps 200 for a smoke run (stops early; the LR schedule is still the full run's)
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn.functional as F

from lora_torch import adamw_param_groups, inject_lora, linear_warmup_schedule
from nn_llama import LlamaWithHead
from ref_common import SHARED
from safetensors_io import load_file
from stories260k_reference import MODEL_DIR, tokenizer

BOS, PAD = 1, 0


def read_sst2(path: str, sp, max_len: int):
    """Returns (list of id lists, labels tensor); fails naming the file and line on a malformed row."""
    ids, labels = [], []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != ["sentence", "label"]:
            raise ValueError(f"{path}: expected header 'sentence<TAB>label', got {header}")
        for line_no, line in enumerate(f, start=2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2 or parts[1] not in ("0", "1"):
                raise ValueError(f"{path}:{line_no}: expected 'sentence<TAB>0|1', got {line!r}")
            ids.append(([BOS] + sp.encode(parts[0].strip()))[:max_len])
            labels.append(int(parts[1]))
    return ids, torch.tensor(labels)


def collate(seqs):
    """Right-pads to the longest sequence in the batch; returns ids, attention mask, index of the last real token."""
    longest = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), longest), PAD, dtype=torch.int64)
    mask = torch.zeros(len(seqs), longest)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    lengths = torch.tensor([len(s) for s in seqs])
    return ids, mask, lengths - 1


def build_model(mode: str, args):
    with open(os.path.join(MODEL_DIR, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    cfg.update({"num_labels": 2, "pad_token_id": PAD})
    model = LlamaWithHead(cfg, "sequence")
    state = load_file(os.path.join(MODEL_DIR, "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or missing != ["score.weight"]:
        raise ValueError(f"stories260K load: missing {missing}, unexpected {unexpected}")
    torch.nn.init.normal_(model.score.weight, std=0.02)
    if mode == "lora":
        for p in model.parameters():
            p.requires_grad_(False)
        inject_lora(model.model, set(args.targets.split(",")), args.rank, args.alpha, args.lora_dropout)
        model.score.weight.requires_grad_(True)
    return model


@torch.no_grad()
def evaluate(model, ids, labels, batch_size: int = 256):
    model.eval()
    correct, nll = 0, 0.0
    for start in range(0, len(ids), batch_size):
        x, mask, last = collate(ids[start:start + batch_size])
        y = labels[start:start + batch_size]
        logits, _ = model(x, mask, pool_index=last)
        nll += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(-1) == y).sum())
    model.train()
    return correct / len(ids), nll / len(ids)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["lora", "full"], required=True)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--targets", default="q_proj,v_proj")
    ap.add_argument("--lora-dropout", type=float, default=0.05)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--warmup-ratio", type=float, default=0.06)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (smoke run); 0 = all")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    sp = tokenizer()
    t0 = time.perf_counter()
    train_ids, train_y = read_sst2(os.path.join(SHARED, "data", "sst2", "train.tsv"), sp, args.max_len)
    dev_ids, dev_y = read_sst2(os.path.join(SHARED, "data", "sst2", "dev.tsv"), sp, args.max_len)
    tokenize_s = time.perf_counter() - t0

    model = build_model(args.mode, args)
    model.train()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(adamw_param_groups(named, args.weight_decay), lr=args.lr, betas=(0.9, 0.999),
                                  eps=1e-8)
    steps_per_epoch = math.ceil(len(train_ids) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    warmup_steps = math.ceil(args.warmup_ratio * total_steps)
    scheduler = linear_warmup_schedule(optimizer, warmup_steps, total_steps)
    order_gen = torch.Generator().manual_seed(args.seed)

    result = {
        "script": "build/reference/lora_sst2_reference.py", "torch": torch.__version__, "mode": args.mode,
        "seed": args.seed, "lr": args.lr, "epochs_requested": args.epochs, "batch_size": args.batch_size,
        "max_len": args.max_len, "threads": args.threads, "weight_decay": args.weight_decay,
        "max_grad_norm": args.max_grad_norm, "warmup_steps": warmup_steps, "total_steps": total_steps,
        "trainable_params": sum(p.numel() for _, p in named),
        "total_params": sum(p.numel() for p in model.parameters()),
        "train_rows": len(train_ids), "dev_rows": len(dev_ids), "tokenize_s": round(tokenize_s, 2),
    }
    if args.mode == "lora":
        result.update({"rank": args.rank, "alpha": args.alpha, "targets": args.targets,
                       "lora_dropout": args.lora_dropout})
    epochs, step = [], 0
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(len(train_ids), generator=order_gen).tolist()
        t_epoch, loss_sum, batches = time.perf_counter(), 0.0, 0
        for start in range(0, len(perm), args.batch_size):
            rows = perm[start:start + args.batch_size]
            x, mask, last = collate([train_ids[i] for i in rows])
            logits, _ = model(x, mask, pool_index=last)
            loss = F.cross_entropy(logits, train_y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if args.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_([p for _, p in named], args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            loss_sum += float(loss)
            batches += 1
            step += 1
            if args.max_steps and step >= args.max_steps:
                break
        train_s = time.perf_counter() - t_epoch
        t_eval = time.perf_counter()
        acc, nll = evaluate(model, dev_ids, dev_y)
        epochs.append({"epoch": epoch, "steps": batches, "train_loss": round(loss_sum / batches, 5),
                       "dev_accuracy": round(acc, 5), "dev_nll": round(nll, 5), "train_wall_s": round(train_s, 2),
                       "ms_per_step": round(1000 * train_s / batches, 2),
                       "eval_wall_s": round(time.perf_counter() - t_eval, 2)})
        if args.max_steps and step >= args.max_steps:
            result["stopped_early_at_step"] = step
            break
    result["epochs"] = epochs
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
