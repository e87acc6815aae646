"""Reference values for the bottleneck adapter layer and the AdapterFusion layer (issue 7), in plain PyTorch.

Writes test/Microsoft.ML.Peft.Tests/Fixtures/reference/adapters/adapters.safetensors (+ adapters.json):

* serial adapter on a linear layer: y = base(x) + s * up(act(down(base(x)))) for act in (silu, gelu exact), s = 1.5,
  and the gradients of L = sum(y * r) with respect to x and every adapter tensor;
* AdapterFusion: q = W_Q h + b_Q, k_n = W_K z_n + b_K, v_n = W_V z_n, p = softmax_n(q . k_n), out = sum_n p_n v_n,
  and the gradients of L = sum(out * r) with respect to h, every z_n and the fusion weights.

The formulas are written out here independently of the C# code (Pfeiffer et al. 2021, Houlsby et al. 2019).
Run: /usr/bin/python3 build/reference/adapters_reference.py
"""
import torch

from ref_common import deterministic, fixture_path, randn, write_json
from safetensors_io import save_file


def serial_case(gen, act_name):
    act = {"silu": torch.nn.functional.silu, "gelu": torch.nn.functional.gelu}[act_name]
    t = {
        "x": randn(gen, 2, 3, 6),
        "base.weight": randn(gen, 5, 6, std=0.5),
        "base.bias": randn(gen, 5, std=0.5),
        "down.weight": randn(gen, 3, 5, std=0.5),
        "down.bias": randn(gen, 3, std=0.5),
        "up.weight": randn(gen, 5, 3, std=0.5),
        "up.bias": randn(gen, 5, std=0.5),
        "r": randn(gen, 2, 3, 5),
    }
    leaves = {k: v.clone().requires_grad_(k not in ("base.weight", "base.bias", "r")) for k, v in t.items()}
    y0 = torch.nn.functional.linear(leaves["x"], leaves["base.weight"], leaves["base.bias"])
    h = act(torch.nn.functional.linear(y0, leaves["down.weight"], leaves["down.bias"]))
    y = y0 + 1.5 * torch.nn.functional.linear(h, leaves["up.weight"], leaves["up.bias"])
    (y * leaves["r"]).sum().backward()
    out = {f"serial_{act_name}.{k}": v for k, v in t.items()}
    out[f"serial_{act_name}.y"] = y.detach()
    for k in ("x", "down.weight", "down.bias", "up.weight", "up.bias"):
        out[f"serial_{act_name}.grad.{k}"] = leaves[k].grad
    return out


def fusion_case(gen):
    d, n = 5, 3
    t = {
        "h": randn(gen, 2, 3, d),
        "z": randn(gen, n, 2, 3, d),
        "query.weight": randn(gen, d, d, std=0.5),
        "query.bias": randn(gen, d, std=0.5),
        "key.weight": randn(gen, d, d, std=0.5),
        "key.bias": randn(gen, d, std=0.5),
        "value.weight": randn(gen, d, d, std=0.5),
        "r": randn(gen, 2, 3, d),
    }
    leaves = {k: v.clone().requires_grad_(k != "r") for k, v in t.items()}
    q = torch.nn.functional.linear(leaves["h"], leaves["query.weight"], leaves["query.bias"])  # [2, 3, d]
    scores, values = [], []
    for i in range(n):
        z = leaves["z"][i]
        k = torch.nn.functional.linear(z, leaves["key.weight"], leaves["key.bias"])
        scores.append((q * k).sum(-1))
        values.append(torch.nn.functional.linear(z, leaves["value.weight"]))
    p = torch.softmax(torch.stack(scores, -1), -1)  # [2, 3, n]
    out = sum(p[..., i:i + 1] * values[i] for i in range(n))
    (out * leaves["r"]).sum().backward()
    result = {f"fusion.{k}": v for k, v in t.items()}
    result["fusion.out"] = out.detach()
    result["fusion.p"] = p.detach()
    for k in ("h", "z", "query.weight", "query.bias", "key.weight", "key.bias", "value.weight"):
        result[f"fusion.grad.{k}"] = leaves[k].grad
    return result


def main():
    deterministic(7)
    gen = torch.Generator().manual_seed(7)
    tensors = {}
    tensors.update(serial_case(gen, "silu"))
    tensors.update(serial_case(gen, "gelu"))
    tensors.update(fusion_case(gen))
    save_file(tensors, fixture_path("adapters", "adapters.safetensors"))
    write_json({
        "script": "build/reference/adapters_reference.py",
        "torch": torch.__version__,
        "serial": "y = base(x) + 1.5 * up(act(down(base(x)))), act in silu / gelu (exact erf); grads of sum(y * r)",
        "fusion": "q = Wq h + bq; k_n = Wk z_n + bk; v_n = Wv z_n; p = softmax_n(q . k_n); out = sum_n p_n v_n; grads of sum(out * r)",
        "tensors": {k: {"dtype": "float32", "shape": list(v.shape)} for k, v in sorted(tensors.items())},
    }, fixture_path("adapters", "adapters.json"))


if __name__ == "__main__":
    main()
