"""Reference for the C# training loop: three LoRA fine-tuning steps of stories260K + score head in plain PyTorch.

Writes test/Microsoft.ML.Peft.Tests/Fixtures/reference/trainer/:
  adapter/adapter_config.json, adapter/adapter_model.safetensors
      the starting adapter in Hugging Face PEFT's layout (LoRA r 4, alpha 8, no dropout, on q_proj and v_proj of all
      5 layers; keys base_model.model.model.layers.N.self_attn.{q,v}_proj.lora_{A,B}.weight and, as modules_to_save,
      base_model.model.score.weight). A is Kaiming-uniform; B and score are N(0, 0.02) so that every matrix gets a
      gradient at the first step.
  steps.safetensors  `input_ids` [8, 12] (right-padded with 0), `lengths` [8], `labels` [8], and after each step s
      (1..3) every trained tensor under `step<s>.<PEFT key>`, plus `loss` [3] and `grad_norm` [3] (before clipping).
  trainer.json       the settings and the per-step losses, learning rates and gradient norms.

Training: the 8 rows form one batch (so row order does not matter), mean cross-entropy on the last real token,
AdamW (betas 0.9/0.999, eps 1e-8, weight decay 0.01 on matrices), learning rate 0.02 with linear decay over 3 steps
and no warm-up (factors 1, 2/3, 1/3), gradient-norm clipping at 0.5.

  /usr/bin/python3 build/reference/trainer_reference.py
"""
import json
import os

import torch
import torch.nn.functional as F

from lora_torch import adamw_param_groups, inject_lora, linear_warmup_schedule
from nn_llama import LlamaWithHead
from ref_common import FIXTURES, deterministic, write_json
from safetensors_io import load_file, save_file
from stories260k_reference import MODEL_DIR, tokenizer

BOS, PAD = 1, 0
RANK, ALPHA, TARGETS = 4, 8.0, ("q_proj", "v_proj")
LR, WEIGHT_DECAY, MAX_NORM, STEPS, MAX_LEN = 0.02, 0.01, 0.5, 3, 12
SENTENCES = [
    ("hide new secretions from the parental units", 0),
    ("contains no wit , only labored gags", 0),
    ("that loves its characters and communicates something rather beautiful about human nature", 1),
    ("remains utterly satisfied to remain the same throughout", 0),
    ("on the worst revenge-of-the-nerds clichés the filmmakers could dredge up", 0),
    ("that 's far too tragic to merit such superficial treatment", 0),
    ("demonstrates that the director of such hollywood blockbusters as patriot games can still turn out a small , personal film", 1),
    ("a gorgeous , witty , seductive movie", 1),
]


def peft_key(name: str) -> str:
    """torch name (model.layers.0.self_attn.q_proj.lora_A.weight) -> PEFT key."""
    return "base_model.model." + name


def main():
    deterministic(1234)
    with open(os.path.join(MODEL_DIR, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    cfg.update({"num_labels": 2, "pad_token_id": PAD})
    model = LlamaWithHead(cfg, "sequence")
    missing, unexpected = model.load_state_dict(load_file(os.path.join(MODEL_DIR, "model.safetensors")), strict=False)
    assert missing == ["score.weight"] and not unexpected, (missing, unexpected)
    for p in model.parameters():
        p.requires_grad_(False)
    inject_lora(model.model, set(TARGETS), RANK, ALPHA, 0.0)
    gen = torch.Generator().manual_seed(99)
    with torch.no_grad():
        model.score.weight.copy_(torch.randn(model.score.weight.shape, generator=gen) * 0.02)
        for name, p in model.named_parameters():
            if name.endswith("lora_B.weight"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    model.score.weight.requires_grad_(True)
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert len(trained) == 21, [n for n, _ in trained]

    out = os.path.join(FIXTURES, "trainer")
    adapter = os.path.join(out, "adapter")
    os.makedirs(adapter, exist_ok=True)
    save_file({peft_key(n): p.detach().clone() for n, p in trained}, os.path.join(adapter, "adapter_model.safetensors"))
    config = {
        "peft_type": "LORA", "task_type": "SEQ_CLS", "base_model_name_or_path": "stories260K", "r": RANK, "lora_alpha": ALPHA,
        "lora_dropout": 0.0, "target_modules": list(TARGETS), "modules_to_save": ["score"], "bias": "none",
        "fan_in_fan_out": False, "init_lora_weights": True, "inference_mode": False, "use_rslora": False,
    }
    with open(os.path.join(adapter, "adapter_config.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(config, f, indent=2)
        f.write("\n")

    sp = tokenizer()
    rows = [([BOS] + sp.encode(s))[:MAX_LEN] for s, _ in SENTENCES]
    longest = max(len(r) for r in rows)
    ids = torch.full((len(rows), longest), PAD, dtype=torch.int64)
    mask = torch.zeros(len(rows), longest)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1
    lengths = torch.tensor([len(r) for r in rows])
    labels = torch.tensor([y for _, y in SENTENCES])

    optimizer = torch.optim.AdamW(adamw_param_groups(trained, WEIGHT_DECAY), lr=LR, betas=(0.9, 0.999), eps=1e-8)
    schedule = linear_warmup_schedule(optimizer, 0, STEPS)
    model.train()
    tensors = {"input_ids": ids.to(torch.int32), "lengths": lengths.to(torch.int32), "labels": labels.to(torch.int32)}
    losses, norms, rates = [], [], []
    for step in range(1, STEPS + 1):
        rates.append(optimizer.param_groups[0]["lr"])
        logits, _ = model(ids, mask, pool_index=lengths - 1)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_([p for _, p in trained], MAX_NORM)))
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(float(loss))
        for n, p in trained:
            tensors[f"step{step}.{peft_key(n)}"] = p.detach().clone()
    tensors["loss"] = torch.tensor(losses)
    tensors["grad_norm"] = torch.tensor(norms)
    save_file(tensors, os.path.join(out, "steps.safetensors"))
    write_json({
        "script": "build/reference/trainer_reference.py", "torch": torch.__version__,
        "settings": {"rank": RANK, "alpha": ALPHA, "targets": list(TARGETS), "lr": LR, "weight_decay": WEIGHT_DECAY,
                     "max_grad_norm": MAX_NORM, "steps": STEPS, "warmup": 0, "batch": len(rows), "max_len": MAX_LEN},
        "sentences": [s for s, _ in SENTENCES], "input_ids": rows,
        "loss": losses, "grad_norm": norms, "learning_rate": rates,
    }, os.path.join(out, "trainer.json"))
    print(json.dumps({"loss": losses, "grad_norm": norms, "lr": rates}))


if __name__ == "__main__":
    main()
