"""LoRA for nn.Linear in plain PyTorch, with the Microsoft/PEFT default initialisation (used by the SST-2 quality
reference and the benchmark peer)."""
import math

import torch
from torch import nn


class LoraLinear(nn.Module):
    """y = base(x) + (alpha / r) * B(A(dropout(x))), base frozen.

    A [r, in] is Kaiming-uniform with a = sqrt(5) (nn.Linear's own default, as PEFT's init_lora_weights=True) and B
    [out, r] is zero, so the wrapped layer starts out exactly equal to the base layer.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.lora_A = nn.Linear(base.in_features, rank, bias=False)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.scaling = alpha / rank

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(self.dropout(x))) * self.scaling


def inject_lora(model: nn.Module, targets, rank: int, alpha: float, dropout: float) -> int:
    """Replaces every nn.Linear whose attribute name is in `targets` by a LoraLinear; returns how many were wrapped.
    Modules are visited in named_modules() order, so A's random init is reproducible for a given torch seed."""
    wrapped = 0
    for _, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if child_name in targets and isinstance(child, nn.Linear):
                setattr(parent, child_name, LoraLinear(child, rank, alpha, dropout))
                wrapped += 1
    if wrapped == 0:
        raise ValueError(f"no nn.Linear named any of {sorted(targets)} in the model")
    return wrapped


def adamw_param_groups(named_params, weight_decay: float):
    """HF Trainer convention: decay matrices, not biases or norm weights (here: no decay for 1-D tensors)."""
    decay = [p for _, p in named_params if p.requires_grad and p.dim() >= 2]
    no_decay = [p for _, p in named_params if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def linear_warmup_schedule(optimizer, warmup_steps: int, total_steps: int):
    """get_linear_schedule_with_warmup: lr * s / W during warm-up, then linear decay to 0 at total_steps."""
    def multiplier(step):
        if step < warmup_steps:
            return float(step) / float(max(1, warmup_steps))
        return max(0.0, float(total_steps - step) / float(max(1, total_steps - warmup_steps)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
