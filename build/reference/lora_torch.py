"""LoRA for nn.Linear in plain PyTorch, with the Microsoft/PEFT default initialisation (used by the SST-2 quality
reference and the benchmark peer)."""
import math

import torch
from torch import nn
import torch.nn.functional as F


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


def wrap_linears(model: nn.Module, targets, wrap) -> int:
    """Replaces every nn.Linear whose attribute name is in `targets` by wrap(linear, name); returns how many were
    wrapped. Modules are visited in named_modules() order, so random inits are reproducible for a given torch seed."""
    wrapped = 0
    for _, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if child_name in targets and isinstance(child, nn.Linear):
                setattr(parent, child_name, wrap(child, child_name))
                wrapped += 1
    if wrapped == 0:
        raise ValueError(f"no nn.Linear named any of {sorted(targets)} in the model")
    return wrapped


def inject_lora(model: nn.Module, targets, rank: int, alpha: float, dropout: float) -> int:
    """Replaces every nn.Linear whose attribute name is in `targets` by a LoraLinear; returns how many were wrapped."""
    return wrap_linears(model, targets, lambda linear, _: LoraLinear(linear, rank, alpha, dropout))


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


class DoraLinear(LoraLinear):
    """DoRA (Liu et al. 2024) as PEFT's DoraLinearLayer: m * (W + s*B*A) / ||W + s*B*A|| per output row, the norm
    detached (computed from a detached B*A and never differentiated), m initialised to that norm (identity at init).

    forward = base(x) + (f - 1) * (x_d W^T) + f * s * B(A(x_d)), f = m / norm, x_d = dropout(x). PEFT reuses base(x)
    for x_d W^T when dropout is the identity or off (eval); with active dropout it recomputes x_d W^T (no bias)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
        super().__init__(base, rank, alpha, dropout)
        with torch.no_grad():
            norm = self._weight_norm()
        self.lora_magnitude_vector = nn.Parameter(norm.clone())

    def _weight_norm(self):
        delta = (self.lora_B.weight @ self.lora_A.weight).detach() * self.scaling
        return (self.base.weight + delta).norm(p=2, dim=1).detach()

    def forward(self, x):
        result = self.base(x)
        factor = self.lora_magnitude_vector / self._weight_norm()
        if isinstance(self.dropout, nn.Identity) or not self.training:
            x_d, direction = x, result if self.base.bias is None else result - self.base.bias
        else:
            x_d = self.dropout(x)
            direction = F.linear(x_d, self.base.weight)
        lora = self.lora_B(self.lora_A(x_d)) * self.scaling
        return result + (factor - 1) * direction + factor * lora


class IA3Linear(nn.Module):
    """(IA)^3 as PEFT's IA3 Linear: y = base(x) * l with l [out, 1] (output scaling), or y = base(x * l) with
    l [1, in] for a feed-forward module (input scaling). l starts at ones (init_ia3_weights=True), so the wrapped
    layer is the base layer at init. The vectors are 2-D as in PEFT, so the "decay matrices" rule decays them."""

    def __init__(self, base: nn.Linear, feedforward: bool):
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.feedforward = feedforward
        shape = (1, base.in_features) if feedforward else (base.out_features, 1)
        self.ia3_l = nn.Parameter(torch.ones(shape))

    def forward(self, x):
        if self.feedforward:
            return self.base(x * self.ia3_l.flatten())
        return self.base(x) * self.ia3_l.flatten()


def inject_ia3(model: nn.Module, targets, feedforward) -> int:
    """Wraps every nn.Linear named in `targets` by an IA3Linear (input scaling when also in `feedforward`)."""
    return wrap_linears(model, targets, lambda linear, name: IA3Linear(linear, name in feedforward))


def inject_dora(model: nn.Module, targets, rank: int, alpha: float, dropout: float) -> int:
    """As inject_lora, with DoraLinear."""
    return wrap_linears(model, targets, lambda linear, _: DoraLinear(linear, rank, alpha, dropout))


def loraplus_param_groups(named_params, weight_decay: float, lr: float, ratio: float):
    """LoRA+ as Microsoft.ML.Peft's LoraPlus.CreateParameterGroups + the trainer's "decay matrices only" split
    (= PEFT's create_loraplus_optimizer for these parameters): lora_B and every 1-D parameter at ratio*lr, the rest
    (lora_A, the score head) at lr; 1-D parameters never decay. Each group's "lr" is its peak; LambdaLR scales all."""
    groups = {}
    for name, p in named_params:
        if not p.requires_grad:
            continue
        fast = "lora_B" in name or p.dim() == 1
        decays = p.dim() >= 2
        groups.setdefault((fast, decays), []).append(p)
    return [{"params": ps, "lr": lr * (ratio if fast else 1.0), "weight_decay": weight_decay if decays else 0.0}
            for (fast, decays), ps in sorted(groups.items())]
