"""PyTorch peer for the C# benchmarks: the same workloads, float32 on CPU, timed with time.perf_counter.

Prints one line per workload:  torch <name> tokens/s=<..> ms/step=<..>
  bert-base-layer-fwd-bwd     one BERT-base encoder layer (hidden 768, 12 heads, FFN 3072, exact GELU),
                              batch 8 x seq 128, forward + backward of sum(out * R) (grads for input and weights)
  bert-base-12l-lora-train    BERT-base-shaped model (vocab 30522, 12 layers, random weights) + 2-way classifier,
                              batch 8 x seq 128, LoRA r 8 / alpha 16 on query and value (dropout 0), cross-entropy,
                              backward, AdamW step on the LoRA and classifier parameters; also prints the median
                              process CPU time per step (cpu_ms/step) and tokens per CPU second
  stories260k-sst2-lora-step  the lora_sst2_reference.py recipe's training step: stories260K + score head,
                              batch 32 x seq 64 (all positions real), LoRA r 8 on q_proj/v_proj with dropout 0.05,
                              cross-entropy at the last token, clip 1.0, AdamW, LR schedule step
ms/step is the median over the timed steps after warm-up; tokens/s = batch * seq / (median seconds).

  /usr/bin/python3 build/reference/bench_torch.py [--threads 2] [--only NAME]
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lora_torch import adamw_param_groups, inject_lora, linear_warmup_schedule
from lora_sst2_reference import build_model
from nn_bert import BertLayer, EncoderWithHead
from nn_common import extended_attention_mask

BERT_BASE = {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072, "layer_norm_eps": 1e-12,
             "hidden_act": "gelu", "vocab_size": 30522, "max_position_embeddings": 512, "type_vocab_size": 2,
             "pad_token_id": 0, "num_hidden_layers": 12, "num_labels": 2}


def timed(step, warmup: int, steps: int) -> float:
    """Median seconds of `steps` calls after `warmup` untimed calls."""
    return timed_wall_and_cpu(step, warmup, steps)[0]


def timed_wall_and_cpu(step, warmup: int, steps: int) -> tuple:
    """Median wall seconds and median process CPU seconds (all threads) of `steps` calls after `warmup` untimed calls.
    On a loaded machine the CPU time still says how much work a step costs, where the wall time says how much of the
    machine the process was given."""
    for _ in range(warmup):
        step()
    walls, cpus = [], []
    for _ in range(steps):
        t, c = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def report(name: str, tokens: int, seconds: float) -> None:
    print(f"torch {name} tokens/s={tokens / seconds:.1f} ms/step={1000 * seconds:.2f}", flush=True)


def bert_layer_fwd_bwd():
    batch, seq = 8, 128
    layer = BertLayer(BERT_BASE)
    x = torch.randn(batch, seq, 768, requires_grad=True)
    mask = extended_attention_mask(torch.ones(batch, seq))
    r = torch.randn(batch, seq, 768)

    def step():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        (layer(x, mask) * r).sum().backward()

    report("bert-base-layer-fwd-bwd", batch * seq, timed(step, warmup=2, steps=5))


def bert_12l_lora_train():
    batch, seq = 8, 128
    model = EncoderWithHead(BERT_BASE, "bert", "bert_sequence")
    for p in model.parameters():
        p.requires_grad_(False)
    inject_lora(model.bert.encoder, {"query", "value"}, rank=8, alpha=16, dropout=0.0)
    for p in model.classifier.parameters():
        p.requires_grad_(True)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW(adamw_param_groups(named, 0.01), lr=1e-3)
    ids = torch.randint(1, 30522, (batch, seq))
    mask, types = torch.ones(batch, seq), torch.zeros(batch, seq, dtype=torch.int64)
    labels = torch.randint(0, 2, (batch,))

    def step():
        logits, _, _ = model(ids, mask, types)
        loss = F.cross_entropy(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    wall, cpu = timed_wall_and_cpu(step, warmup=1, steps=3)
    print(f"torch bert-base-12l-lora-train tokens/s={batch * seq / wall:.1f} ms/step={1000 * wall:.2f} "
          f"cpu_ms/step={1000 * cpu:.2f} tokens/cpu_s={batch * seq / cpu:.1f}", flush=True)


def stories_sst2_lora_step():
    batch, seq = 32, 64
    args = argparse.Namespace(targets="q_proj,v_proj", rank=8, alpha=16.0, lora_dropout=0.05)
    model = build_model("lora", args).train()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW(adamw_param_groups(named, 0.01), lr=2e-3)
    sched = linear_warmup_schedule(opt, 253, 4210)
    ids = torch.randint(3, 512, (batch, seq))
    ids[:, 0] = 1
    mask, last = torch.ones(batch, seq), torch.full((batch,), seq - 1)
    labels = torch.randint(0, 2, (batch,))

    def step():
        logits, _ = model(ids, mask, pool_index=last)
        loss = F.cross_entropy(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in named], 1.0)
        opt.step()
        sched.step()

    report("stories260k-sst2-lora-step", batch * seq, timed(step, warmup=5, steps=30))


WORKLOADS = {"bert-base-layer-fwd-bwd": bert_layer_fwd_bwd, "bert-base-12l-lora-train": bert_12l_lora_train,
             "stories260k-sst2-lora-step": stories_sst2_lora_step}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=sorted(WORKLOADS), help="run one workload")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    for name, fn in WORKLOADS.items():
        if args.only in (None, name):
            fn()


if __name__ == "__main__":
    main()
