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
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_common import REPO_ROOT, deterministic, describe, max_abs_diff, write_json  # noqa: E402
from safetensors_io import save_file  # noqa: E402

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


if __name__ == "__main__":
    deterministic(0)
    dora_fixture()
