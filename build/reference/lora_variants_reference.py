"""Reference fixtures for the LoRA variants (test/Microsoft.ML.Peft.Tests/Fixtures/lora/).

No `peft` package is installed, so the variants are restated in plain PyTorch from PEFT's definitions:

DoRA (peft/tuners/lora/dora.py, DoraLinearLayer, and lora/layer.py Linear.forward / get_delta_weight):
    weight_norm = ||W + scaling * B@A||_row   (torch.linalg.norm(dim=1), DETACHED from the graph)
    s = magnitude / weight_norm               (per output row)
    eval / dropout = Identity:   y = base(x) + (s - 1) * (base(x) - bias) + s * scaling * B(A(x))
    training with dropout:       xd = dropout(x); y = base(x) + (s - 1) * (xd W^T) + s * scaling * B(A(xd))
    merged weight:               W' = s[:, None] * (W + scaling * B@A)
    magnitude init:              ||W + scaling * B@A||_row  (B = 0 at a default init, so ||W||_row)

Writes (run with /usr/bin/python3 build/reference/lora_variants_reference.py; < 1 s; byte-for-byte reproducible):
    dora_linear.safetensors/.json   one DoRA linear layer (in 6, out 5, bias, r 4, alpha 8) on x [2, 3, 6]: outputs and
                                    d loss / d A, B, magnitude, x for loss = sum(y * R), without dropout ("eval") and
                                    with a fixed dropout mask ("dropout", p = 0.25, mask stored); the merged weight
    olora_linear.safetensors/.json  OLoRA (init_lora_weights="olora", peft/tuners/lora/layer.py olora_init, restated
                                    below) on a tall [7, 5], a wide [4, 6] and a square [4, 4] float32 base weight:
                                    A = R[:r], B = Q[:, :r] of torch.linalg.qr(W) (reduced, LAPACK's Householder signs)
                                    and the residual base weight W - scaling * B @ A
    adalora_allocator.safetensors/.json
                                    PEFT's RankAllocator (restated below from peft/tuners/adalora/layer.py) on two
                                    SVD layers (init_r 4, target_r 2 → budget 8 → 4) over total_step 6 with given
                                    parameter values and gradients per step: E after each allocation and the kept mask
"""
import os

import torch

from ref_common import REPO_ROOT, deterministic, describe, max_abs_diff, write_json
from safetensors_io import save_file

OUT = os.path.join(REPO_ROOT, "test", "Microsoft.ML.Peft.Tests", "Fixtures", "lora")


def path(*parts):
    p = os.path.join(OUT, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def dora_forward(x, xd, W, b, A, B, m, scaling, base_result_is_reused):
    """PEFT's lora.Linear forward with use_dora (one adapter). xd is the dropped-out input (x itself without dropout)."""
    result = torch.nn.functional.linear(x, W, b)
    lora_weight = (B @ A).detach()                                   # dora.py: lora_weight.detach() for the norm
    weight_norm = torch.linalg.norm(W + scaling * lora_weight, dim=1).detach()
    mag_norm_scale = (m / weight_norm).view(1, -1)
    lora_result = torch.nn.functional.linear(torch.nn.functional.linear(xd, A), B)
    if base_result_is_reused:
        base_result = result - b                                     # base_result given: bias removed
    else:
        base_result = torch.nn.functional.linear(xd, W)              # recomputed on the dropped input, no bias
    return result + (mag_norm_scale - 1) * base_result + mag_norm_scale * lora_result * scaling


def dora_fixture():
    gen = torch.Generator().manual_seed(4321)
    tensors, notes, checks = {}, {}, {}
    r, alpha = 4, 8.0
    scaling = alpha / r
    W = torch.randn(5, 6, generator=gen) * 0.5
    b = torch.randn(5, generator=gen) * 0.5
    A = torch.randn(r, 6, generator=gen) * 0.5
    B = torch.randn(5, r, generator=gen) * 0.5
    x = torch.randn(2, 3, 6, generator=gen)
    R = torch.randn(2, 3, 5, generator=gen)
    p = 0.25
    mask = (torch.rand(2, 3, 6, generator=gen) >= p).float()
    init_norm = torch.linalg.norm(W + scaling * (B @ A), dim=1)
    m = init_norm * (1 + 0.2 * torch.randn(5, generator=gen))        # as after some training: m != ||W + sBA||
    tensors.update({"base.weight": W, "base.bias": b, "lora_A": A, "lora_B": B, "input": x, "loss.projection": R,
                    "magnitude": m, "magnitude.init": init_norm, "dropout.mask": mask})
    notes.update({
        "base.": "frozen nn.Linear(6, 5) weight [out, in] and bias",
        "lora_A": "A [r=4, in=6]", "lora_B": "B [out=5, r=4] (non-zero, as after training)",
        "input": "x [2, 3, 6]", "loss.projection": "R: loss = sum(y * R)",
        "magnitude": "lora_magnitude_vector [5] used in the forward (init * (1 + 0.2 * N(0,1)))",
        "magnitude.init": "what DoRA initialises the magnitude to: ||W + scaling * B@A|| per output row",
        "dropout.mask": "keep mask (1 = kept) of the dropout case; the dropped input is x * mask / (1 - p), p = 0.25",
    })
    for case in ("eval", "dropout"):
        xi = x.clone().requires_grad_(True)
        Ai, Bi, mi = A.clone().requires_grad_(True), B.clone().requires_grad_(True), m.clone().requires_grad_(True)
        xd = xi if case == "eval" else xi * mask / (1 - p)
        y = dora_forward(xi, xd, W, b, Ai, Bi, mi, scaling, base_result_is_reused=(case == "eval"))
        (y * R).sum().backward()
        tensors[f"{case}.output"] = y.detach()
        tensors[f"{case}.grad.lora_A"] = Ai.grad.detach().clone()
        tensors[f"{case}.grad.lora_B"] = Bi.grad.detach().clone()
        tensors[f"{case}.grad.magnitude"] = mi.grad.detach().clone()
        tensors[f"{case}.grad.input"] = xi.grad.detach().clone()
        notes[f"{case}."] = ("no dropout (Identity or eval): base_result reused" if case == "eval" else
                             "training with dropout p = 0.25 and the stored mask: base_result recomputed from xd") + \
            "; output y and gradients of the loss"
        x64 = x.double()
        xd64 = x64 if case == "eval" else x64 * mask.double() / (1 - p)
        y64 = dora_forward(x64, xd64, W.double(), b.double(), A.double(), B.double(), m.double(), scaling, case == "eval")
        checks[case] = {"float32_vs_float64_max_abs_diff": max_abs_diff(y, y64)}
    # Merge: PEFT's get_delta_weight for DoRA, W' = (m / ||W + sBA||)[:, None] * (W + sBA).
    delta = scaling * (B @ A)
    merged = (m / torch.linalg.norm(W + delta, dim=1)).view(-1, 1) * (W + delta)
    tensors["merged.weight"] = merged
    notes["merged.weight"] = "W' = (m / ||W + scaling*B@A||)[:, None] * (W + scaling*B@A)"
    y_merged = torch.nn.functional.linear(x, merged, b)
    checks["merged_vs_eval_output_max_abs_diff"] = max_abs_diff(y_merged, tensors["eval.output"])
    save_file(tensors, path("dora_linear.safetensors"))
    write_json({"config": {"in_features": 6, "out_features": 5, "r": r, "lora_alpha": alpha, "scaling": scaling,
                           "bias": True, "use_dora": True, "dropout_p": p},
                "formula": "y = base(x) + (s - 1) * base_result + s * scaling * B(A(xd)), s = m / ||W + scaling*B@A||_row "
                           "(norm detached); loss = sum(y * R)",
                "checks": checks, "tensors": describe(tensors, notes)}, path("dora_linear.json"))


def olora_init(W, r, scaling):
    """PEFT's olora_init for a float32 Linear weight: QR of W, A = R[:r], B = Q[:, :r], W <- W - scaling * B @ A."""
    Q, R = torch.linalg.qr(W.to(torch.float32))
    A, B = R[:r].contiguous(), Q[:, :r].contiguous()
    return A, B, W - scaling * B @ A


def olora_fixture():
    gen = torch.Generator().manual_seed(2024)
    tensors, notes, cases = {}, {}, {}
    for name, (out_f, in_f, r, alpha) in {"tall": (7, 5, 3, 6.0), "wide": (4, 6, 3, 6.0), "square": (4, 4, 4, 2.0)}.items():
        W = torch.randn(out_f, in_f, generator=gen)
        x = torch.randn(3, in_f, generator=gen)
        scaling = alpha / r
        A, B, residual = olora_init(W, r, scaling)
        tensors[f"{name}.weight"], tensors[f"{name}.lora_A"], tensors[f"{name}.lora_B"] = W, A, B
        tensors[f"{name}.residual"], tensors[f"{name}.input"] = residual, x
        # The layer's output at init: residual base + scaling * B(A(x)) equals the original base output.
        y = torch.nn.functional.linear(x, residual) + scaling * torch.nn.functional.linear(torch.nn.functional.linear(x, A), B)
        tensors[f"{name}.output"] = y
        cases[name] = {"out_features": out_f, "in_features": in_f, "r": r, "lora_alpha": alpha, "scaling": scaling,
                       "init_output_vs_base_max_abs_diff": max_abs_diff(y, torch.nn.functional.linear(x, W))}
    notes["lora_A"] = "R[:r] of torch.linalg.qr(W) (mode 'reduced')"
    notes["lora_B"] = "Q[:, :r]"
    notes["residual"] = "W - scaling * B @ A (the frozen base weight after the init)"
    save_file(tensors, path("olora_linear.safetensors"))
    write_json({"cases": cases, "formula": "Q, R = qr(W); A = R[:r]; B = Q[:, :r]; W <- W - scaling * B @ A",
                "tensors": describe(tensors, {f"{c}.{k}": v for c in cases for k, v in notes.items()})},
               path("olora_linear.json"))


class RankAllocator:
    """PEFT's adalora RankAllocator + AdaLoraModel.update_and_allocate, restated for named tensors (adapter 'default')."""

    def __init__(self, params, init_r, target_r, tinit, tfinal, delta_t, total_step, beta1, beta2):
        self.params, self.beta1, self.beta2 = params, beta1, beta2
        self.tinit, self.tfinal, self.delta_t, self.total_step = tinit, tfinal, delta_t, total_step
        self.layers = sorted({n.rsplit(".lora_", 1)[0] for n in params})
        self.init_bgt = init_r * len(self.layers)
        self.target_bgt = target_r * len(self.layers)
        self.exp_avg_ipt, self.exp_avg_unc, self.rank_pattern = {}, {}, None

    def budget_schedule(self, step):
        if step <= self.tinit:
            return self.init_bgt, False
        if step > self.total_step - self.tfinal:
            return self.target_bgt, True
        mul_coeff = 1 - (step - self.tinit) / (self.total_step - self.tfinal - self.tinit)
        return int((self.init_bgt - self.target_bgt) * (mul_coeff ** 3) + self.target_bgt), step % self.delta_t == 0

    def update_ipt(self, grads):
        for n, p in self.params.items():
            if n not in self.exp_avg_ipt:
                self.exp_avg_ipt[n] = torch.zeros_like(p)
                self.exp_avg_unc[n] = torch.zeros_like(p)
            ipt = (p * grads[n]).abs()
            self.exp_avg_ipt[n] = self.beta1 * self.exp_avg_ipt[n] + (1 - self.beta1) * ipt
            self.exp_avg_unc[n] = self.beta2 * self.exp_avg_unc[n] + (1 - self.beta2) * (ipt - self.exp_avg_ipt[n]).abs()

    def mask_to_budget(self, budget):
        scores, triplet = [], {}
        for layer in self.layers:
            s = lambda n: self.exp_avg_ipt[n] * self.exp_avg_unc[n]  # noqa: E731
            a = torch.mean(s(layer + ".lora_A"), dim=1, keepdim=True)
            b = torch.mean(s(layer + ".lora_B"), dim=0, keepdim=False).view(-1, 1)
            total = s(layer + ".lora_E").view(-1) + torch.cat([a, b], dim=1).sum(dim=1).view(-1)
            triplet[layer] = total.view(-1, 1)
            scores.append(total.view(-1))
        threshold = torch.kthvalue(torch.cat(scores), k=self.init_bgt - budget)[0].item()
        pattern = {}
        with torch.no_grad():
            for layer in self.layers:
                self.params[layer + ".lora_E"].masked_fill_(triplet[layer] <= threshold, 0.0)
                pattern[layer] = (~(triplet[layer] <= threshold)).view(-1).tolist()
        return pattern

    def update_and_allocate(self, step, grads):
        final = self.total_step - self.tfinal
        if step < final:
            self.update_ipt(grads)
            budget, mask = self.budget_schedule(step)
            if mask:
                self.rank_pattern = self.mask_to_budget(budget)
        elif step == final:
            budget, _ = self.budget_schedule(step)
            self.rank_pattern = self.mask_to_budget(budget)
            self.exp_avg_ipt, self.exp_avg_unc = {}, {}
        else:
            with torch.no_grad():
                for layer in self.layers:
                    keep = torch.tensor(self.rank_pattern[layer]).unsqueeze(-1)
                    self.params[layer + ".lora_E"].masked_fill_(~keep, 0.0)


def adalora_allocator_fixture():
    """Two SVD layers, 4 -> 3 (in, out) and 5 -> 2, init_r 4, target_r 2; per step fresh values and gradients."""
    gen = torch.Generator().manual_seed(77)
    shapes = {"layers.0.q": (3, 5), "layers.1.q": (2, 6)}
    cfg = dict(init_r=4, target_r=2, tinit=1, tfinal=1, delta_t=1, total_step=6, beta1=0.85, beta2=0.85)
    tensors, notes = {}, {}
    params = {}
    for layer, (out_f, in_f) in shapes.items():
        params[layer + ".lora_A"] = torch.zeros(cfg["init_r"], in_f)
        params[layer + ".lora_E"] = torch.zeros(cfg["init_r"], 1)
        params[layer + ".lora_B"] = torch.zeros(out_f, cfg["init_r"])
    alloc = RankAllocator(params, **cfg)
    steps = 8
    for step in range(steps):
        grads = {}
        for n in sorted(params):
            value = torch.randn(params[n].shape, generator=gen)
            params[n].copy_(value)
            grads[n] = torch.randn(params[n].shape, generator=gen)
            tensors[f"step{step}.value.{n}"] = value.clone()
            tensors[f"step{step}.grad.{n}"] = grads[n].clone()
        alloc.update_and_allocate(step, grads)
        for layer in shapes:
            tensors[f"step{step}.after.{layer}.lora_E"] = params[layer + ".lora_E"].clone()
    notes["step"] = "per step (0-based): value.<p> is written into parameter p, grad.<p> is its gradient, then " \
                    "update_and_allocate(step) runs; after.<layer>.lora_E is E after the allocation"
    save_file(tensors, path("adalora_allocator.safetensors"))
    write_json({"config": cfg, "layers": {k: {"out": v[0], "in": v[1]} for k, v in shapes.items()}, "steps": steps,
                "budgets": [alloc.budget_schedule(t)[0] for t in range(steps)],
                "final_rank_pattern": alloc.rank_pattern,
                "tensors": describe(tensors, {f"step{t}.": notes["step"] for t in range(steps)})},
               path("adalora_allocator.json"))


if __name__ == "__main__":
    deterministic(0)
    dora_fixture()
    adalora_allocator_fixture()
    olora_fixture()
