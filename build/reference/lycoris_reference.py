"""Reference fixtures for LoHa and LoKr (test/Microsoft.ML.Peft.Tests/Fixtures/lycoris/).

No `peft` package is installed, so the two methods are restated in plain PyTorch from PEFT's definitions
(peft/tuners/loha/layer.py and peft/tuners/lokr/layer.py, Linear targets, eval mode, one adapter):

LoHa:   delta_W = ((w1_a @ w1_b) * (w2_a @ w2_b)) * scaling,   scaling = alpha / r
        (PEFT's HadaWeight autograd function has a hand-written backward; it computes the gradient of this same
        expression, so plain autograd gives the same numbers)
LoKr:   delta_W = kron(w1, w2) * scaling, w1 = lokr_w1 or lokr_w1_a @ lokr_w1_b, w2 = lokr_w2 or lokr_w2_a @ lokr_w2_b;
        w1 [out_l, in_m], w2 [out_k, in_n] from factorization(out, decompose_factor) = (out_l, out_k) and
        factorization(in, decompose_factor) = (in_m, in_n); use_w1 = not (decompose_both and r < max(out_l, in_m) / 2),
        use_w2 = not (r < max(out_k, in_n) / 2)
Both:   y = x W^T + b + x delta_W^T; loss = sum(y * R)

Writes (run with /usr/bin/python3 build/reference/lycoris_reference.py; < 1 s; byte-for-byte reproducible):
    lycoris.safetensors/.json   one LoHa case and two LoKr cases: parameters, input, delta_W, output, d loss / d each
                                parameter and the input; the JSON also holds PEFT's factorization() over a table of
                                dimensions and decompose_factor values
"""
import os

import torch

from ref_common import REPO_ROOT, deterministic, describe, max_abs_diff, write_json
from safetensors_io import save_file

OUT = os.path.join(REPO_ROOT, "test", "Microsoft.ML.Peft.Tests", "Fixtures", "lycoris")


def factorization(dimension, factor=-1):
    """PEFT's lokr factorization (copied there from LyCORIS), restated: the first value is never above the second,
    except that an exact divisor `factor` is returned as (factor, dimension // factor) without reordering."""
    if factor > 0 and (dimension % factor) == 0:
        return factor, dimension // factor
    if factor == -1:
        factor = dimension
    m, n = 1, dimension
    length = m + n
    while m < n:
        new_m = m + 1
        while dimension % new_m != 0:
            new_m += 1
        new_n = dimension // new_m
        if new_m + new_n > length or new_m > factor:
            break
        m, n = new_m, new_n
    if m > n:
        n, m = m, n
    return m, n


def run_case(tensors, prefix, W, b, params, delta_fn, x, R):
    """Forward, delta_W and gradients for one case; stores everything under prefix."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    xg = x.clone().requires_grad_(True)
    delta = delta_fn(leaves)
    y = torch.nn.functional.linear(xg, W, b) + torch.nn.functional.linear(xg, delta)
    (y * R).sum().backward()
    tensors[prefix + "base.weight"], tensors[prefix + "base.bias"] = W, b
    tensors[prefix + "input"], tensors[prefix + "R"] = x, R
    tensors[prefix + "delta_weight"] = delta.detach()
    tensors[prefix + "output"] = y.detach()
    tensors[prefix + "grad.input"] = xg.grad
    for k, v in leaves.items():
        tensors[prefix + k] = params[k]
        tensors[prefix + "grad." + k] = v.grad
    with torch.no_grad():
        d64 = delta_fn({k: v.double() for k, v in params.items()})
    return max_abs_diff(delta.detach(), d64)


def loha_case(gen, tensors):
    out_f, in_f, r, alpha = 5, 6, 2, 3.0
    scaling = alpha / r
    W, b = torch.randn(out_f, in_f, generator=gen) * 0.5, torch.randn(out_f, generator=gen) * 0.5
    params = {"hada_w1_a": torch.randn(out_f, r, generator=gen) * 0.5, "hada_w1_b": torch.randn(r, in_f, generator=gen) * 0.5,
              "hada_w2_a": torch.randn(out_f, r, generator=gen) * 0.5, "hada_w2_b": torch.randn(r, in_f, generator=gen) * 0.5}
    x, R = torch.randn(2, 3, in_f, generator=gen), torch.randn(2, 3, out_f, generator=gen)

    def delta(p):
        return ((p["hada_w1_a"] @ p["hada_w1_b"]) * (p["hada_w2_a"] @ p["hada_w2_b"])) * scaling

    err = run_case(tensors, "loha.", W, b, params, delta, x, R)
    return {"out_features": out_f, "in_features": in_f, "r": r, "alpha": alpha, "scaling": scaling,
            "delta_float32_vs_float64_max_abs_diff": err}


def lokr_case(gen, tensors, name, out_f, in_f, r, alpha, decompose_both, factor):
    scaling = alpha / r
    in_m, in_n = factorization(in_f, factor)
    out_l, out_k = factorization(out_f, factor)
    use_w1 = not (decompose_both and r < max(out_l, in_m) / 2)
    use_w2 = not (r < max(out_k, in_n) / 2)
    W, b = torch.randn(out_f, in_f, generator=gen) * 0.5, torch.randn(out_f, generator=gen) * 0.5
    params = {}
    if use_w1:
        params["lokr_w1"] = torch.randn(out_l, in_m, generator=gen) * 0.5
    else:
        params["lokr_w1_a"] = torch.randn(out_l, r, generator=gen) * 0.5
        params["lokr_w1_b"] = torch.randn(r, in_m, generator=gen) * 0.5
    if use_w2:
        params["lokr_w2"] = torch.randn(out_k, in_n, generator=gen) * 0.5
    else:
        params["lokr_w2_a"] = torch.randn(out_k, r, generator=gen) * 0.5
        params["lokr_w2_b"] = torch.randn(r, in_n, generator=gen) * 0.5
    x, R = torch.randn(2, 3, in_f, generator=gen), torch.randn(2, 3, out_f, generator=gen)

    def delta(p):
        w1 = p["lokr_w1"] if "lokr_w1" in p else p["lokr_w1_a"] @ p["lokr_w1_b"]
        w2 = p["lokr_w2"] if "lokr_w2" in p else p["lokr_w2_a"] @ p["lokr_w2_b"]
        return (torch.kron(w1, w2) * scaling).reshape(out_f, in_f)

    err = run_case(tensors, name + ".", W, b, params, delta, x, R)
    return {"out_features": out_f, "in_features": in_f, "r": r, "alpha": alpha, "scaling": scaling,
            "decompose_both": decompose_both, "decompose_factor": factor, "out_l_out_k": [out_l, out_k],
            "in_m_in_n": [in_m, in_n], "use_w1": use_w1, "use_w2": use_w2, "parameters": sorted(params),
            "delta_float32_vs_float64_max_abs_diff": err}


def main():
    deterministic(0)
    gen = torch.Generator().manual_seed(777)
    tensors, cases = {}, {}
    cases["loha"] = loha_case(gen, tensors)
    # Full w1 and w2 from an exact decompose_factor (returned unordered: (4, 3) for 12).
    cases["lokr_full"] = lokr_case(gen, tensors, "lokr_full", 8, 12, 8, 4.0, False, 4)
    # Both factors low-rank (decompose_both, r 1) from the default square-root factorization.
    cases["lokr_decomposed"] = lokr_case(gen, tensors, "lokr_decomposed", 24, 16, 1, 2.0, True, -1)
    dims = [1, 2, 7, 12, 16, 24, 127, 128, 250, 360, 512, 768, 1024, 3072, 4096, 11008]
    factors = [-1, 0, 2, 3, 4, 8, 16, 64]
    table = [[d, f, *factorization(d, f)] for d in dims for f in factors]
    os.makedirs(OUT, exist_ok=True)
    save_file(tensors, os.path.join(OUT, "lycoris.safetensors"))
    write_json({"cases": cases, "factorization": {"columns": ["dimension", "factor", "first", "second"], "rows": table},
                "loss": "sum(y * R), y = base(x) + x delta_W^T",
                "tensors": describe(tensors, {})}, os.path.join(OUT, "lycoris.json"))


if __name__ == "__main__":
    main()
