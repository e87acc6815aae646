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
  ia3      --mode ia3: (IA)^3 with PEFT's llama defaults, as Microsoft.ML.Peft's IA3Config: k_proj, v_proj scale their
           outputs (l [out, 1]), down_proj scales its input (l [1, in]), vectors start at ones; + score
  prompt   --mode prompt: prompt tuning, --num-virtual-tokens (8) vectors N(0, 1) (PEFT's RANDOM init) prepended to
           the token embeddings; positions 0..n-1 for them and n.. for the text, attention mask extended with n ones,
           the score read at the last real token shifted by n; + score
  bitfit   --mode bitfit: stories260K (Llama) has no bias vectors, so BitFit trains the score head only (as ours)
  dora     --mode dora: DoRA on --targets with LoRA's rank/alpha/dropout, magnitude = row norm of W (identity at
           init), the norm detached, PEFT's dropout path; + score
  loraplus --mode loraplus: LoRA with --loraplus-ratio (16): lora_B at ratio*lr, lora_A and score at lr (decay on
           matrices only), as Microsoft.ML.Peft's LoraPlus groups

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

from lora_torch import (adamw_param_groups, inject_dora, inject_ia3, inject_lora, linear_warmup_schedule,
                        loraplus_param_groups)
from nn_common import causal_padding_mask, rope_cos_sin
from nn_llama import LlamaWithHead
from ref_common import SHARED
from safetensors_io import load_file
from stories260k_reference import MODEL_DIR, tokenizer

BOS, PAD = 1, 0
MODES = ["lora", "full", "ia3", "prompt", "bitfit", "dora", "loraplus"]


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
    if mode == "full":
        return model
    for p in model.parameters():
        p.requires_grad_(False)
    if mode in ("lora", "loraplus"):
        inject_lora(model.model, set(args.targets.split(",")), args.rank, args.alpha, args.lora_dropout)
    elif mode == "dora":
        inject_dora(model.model, set(args.targets.split(",")), args.rank, args.alpha, args.lora_dropout)
    elif mode == "ia3":
        inject_ia3(model.model, {"k_proj", "v_proj", "down_proj"}, {"down_proj"})
    elif mode == "prompt":
        model = PromptTuned(model, args.num_virtual_tokens)
    model.score.weight.requires_grad_(True)
    return model


class PromptTuned(torch.nn.Module):
    """Prompt tuning around LlamaWithHead: n trainable vectors in front of the token embeddings (Microsoft.ML.Peft's
    DecoderModel prompt path = PEFT's PromptEmbedding + LlamaForSequenceClassification on inputs_embeds)."""

    def __init__(self, inner: LlamaWithHead, n: int):
        super().__init__()
        self.inner, self.n = inner, n
        self.prompt_embeddings = torch.nn.Parameter(torch.randn(n, inner.cfg["hidden_size"]))

    @property
    def score(self):
        return self.inner.score

    def forward(self, input_ids, attention_mask, pool_index):
        b, s = input_ids.shape
        backbone = self.inner.model
        x = torch.cat([self.prompt_embeddings.expand(b, -1, -1), backbone.embed_tokens(input_ids)], dim=1)
        mask = torch.cat([torch.ones(b, self.n), attention_mask], dim=1)
        positions = torch.arange(self.n + s)[None].expand(b, self.n + s)
        cos, sin = rope_cos_sin(backbone.inv_freq, positions)
        additive = causal_padding_mask(mask)
        for layer in backbone.layers:
            x = layer(x, cos, sin, additive)
        hidden = backbone.norm(x)
        return self.inner.score(hidden[torch.arange(b), pool_index + self.n]), hidden


@torch.no_grad()
def load_adapter(model, folder: str) -> int:
    """Copies a saved PEFT-format adapter (ours or PEFT's save_pretrained) into the model's parameters by name:
    "base_model.model." / "base_model." stripped, DoRA's "lora_magnitude_vector" as saved. Fails naming any key the
    model lacks or a shape that differs. Used to score Microsoft.ML.Peft's trained adapters with this model's maths."""
    saved = load_file(os.path.join(folder, "adapter_model.safetensors"))
    params = dict(model.named_parameters())
    for key, value in saved.items():
        name = key[len("base_model.model."):] if key.startswith("base_model.model.") else key.removeprefix("base_model.")
        target = params.get(name, params.get("inner." + name))
        if target is None:
            raise KeyError(f"{folder}: saved tensor '{key}' has no parameter '{name}' in the {type(model).__name__}")
        if tuple(target.shape) != tuple(value.shape):
            raise ValueError(f"{folder}: '{key}' is {tuple(value.shape)} but the model's '{name}' is {tuple(target.shape)}")
        target.copy_(value)
    return len(saved)


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
    ap.add_argument("--mode", choices=MODES, required=True)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--targets", default="q_proj,v_proj")
    ap.add_argument("--lora-dropout", type=float, default=0.05)
    ap.add_argument("--num-virtual-tokens", type=int, default=8)
    ap.add_argument("--loraplus-ratio", type=float, default=16.0)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--warmup-ratio", type=float, default=0.06)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--data", default=os.path.join(SHARED, "data", "sst2"), help="folder with train.tsv and dev.tsv")
    ap.add_argument("--eval-at-init", action="store_true", help="also score dev before the first step")
    ap.add_argument("--eval-only", action="store_true", help="with --eval-at-init: score dev and stop (no training)")
    ap.add_argument("--load-adapter", default="", help="start from a saved adapter folder (e.g. one trained by ours)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (smoke run); 0 = all")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    sp = tokenizer()
    t0 = time.perf_counter()
    train_ids, train_y = read_sst2(os.path.join(args.data, "train.tsv"), sp, args.max_len)
    dev_ids, dev_y = read_sst2(os.path.join(args.data, "dev.tsv"), sp, args.max_len)
    tokenize_s = time.perf_counter() - t0

    model = build_model(args.mode, args)
    model.train()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = (loraplus_param_groups(named, args.weight_decay, args.lr, args.loraplus_ratio) if args.mode == "loraplus"
              else adamw_param_groups(named, args.weight_decay))
    optimizer = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
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
    if args.mode in ("lora", "dora", "loraplus"):
        result.update({"rank": args.rank, "alpha": args.alpha, "targets": args.targets,
                       "lora_dropout": args.lora_dropout})
    if args.mode == "loraplus":
        result["loraplus_ratio"] = args.loraplus_ratio
    if args.mode == "prompt":
        result["num_virtual_tokens"] = args.num_virtual_tokens
    if args.mode == "ia3":
        result.update({"targets": "k_proj,v_proj,down_proj", "feedforward": "down_proj"})
    if args.load_adapter:
        result["loaded_adapter"] = {"folder": args.load_adapter, "tensors": load_adapter(model, args.load_adapter)}
    if args.eval_at_init:
        acc0, nll0 = evaluate(model, dev_ids, dev_y)
        result.update({"init_dev_accuracy": round(acc0, 5), "init_dev_nll": round(nll0, 6)})
        if args.eval_only:
            print(json.dumps(result), flush=True)
            return
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
            if step == 0:
                result["first_step_loss"] = round(float(loss), 6)
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
