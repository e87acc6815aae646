"""Reference values for ReFT (src/Microsoft.ML.Peft/Reft): LoReFT and DiReFT interventions on the tiny random Llama.

Model: Fixtures/reference/models/llama_gqa (2 blocks, hidden 32, GQA, llama3 RoPE) as nn_llama.py computes it.
Interventions as pyreft's LoreftIntervention / DireftIntervention, edited after the chosen blocks' outputs
(pyvene's "block_output") at the chosen positions, with dropout 0:
  LoReFT  phi(h) = h + R^T (W h + b - R h)      DiReFT  phi(h) = h + R^T (W h + b)
R [r, d] has orthonormal rows, parametrised as in HouseholderRotation.cs: from V [r, d], u_i = e_i + V[i, j > i],
R = (H_0 H_1 ... H_{r-1} I_{d x r})^T with H_i = I - 2 u_i u_i^T / |u_i|^2. The script checks that this equals
torch.linalg.householder_product (LAPACK's orgqr, what torch.nn.utils.parametrizations.orthogonal uses for
non-square matrices) and that R R^T = I.
Positions: pyreft's "f<p>+l<s>" over each row's real tokens with pyreft's short-row rule (a row of n real tokens
gets min(p, n // 2) first and min(s, n // 2) last positions).

Cases (intervention names as the C# modules):
  loreft: layers [0, 1], r = 3, positions "f2+l1", separate weights: layer_{l}_first / layer_{l}_last
  direft: layers [1], r = 2, positions "f1+l1", share_weights: layer_1
Batch: 3 right-padded rows of 5, 3 and 1 real tokens (the 1-token row gets no intervention).
Loss: sum(last_hidden_state * P * mask) with a fixed random P; gradients for every V, W, b.
Writes Fixtures/reference/reft/reft.safetensors and reft.json. Run with /usr/bin/python3 (PyTorch 1.13).
"""
import json

import torch

from nn_common import causal_padding_mask, rope_cos_sin
from nn_llama import LlamaModel
from ref_common import deterministic, describe, fixture_path, max_abs_diff, write_json
from safetensors_io import load_file, save_file

CASES = {
    "loreft": dict(layers=[0, 1], rank=3, first=2, last=1, shared=False, kind="loreft"),
    "direft": dict(layers=[1], rank=2, first=1, last=1, shared=True, kind="direft"),
}


def householder_rows(v):
    """R [r, d] from V [r, d] by r reflections (the C# HouseholderRotation.Weight, written out)."""
    r, d = v.shape
    u = torch.triu(v, diagonal=1) + torch.eye(r, d, dtype=v.dtype)
    out = torch.eye(r, d, dtype=v.dtype)
    for i in reversed(range(r)):
        ui = u[i:i + 1]
        out = out - (out @ ui.t()) @ ui * (2.0 / (ui * ui).sum())
    return out


def position_masks(mask, first, last):
    b, s = mask.shape
    f_mask = torch.zeros(b, s, 1, dtype=torch.bool)
    l_mask = torch.zeros(b, s, 1, dtype=torch.bool)
    for row in range(b):
        real = [t for t in range(s) if mask[row, t] > 0]
        n = len(real)
        f, l = min(first, n // 2), min(last, n // 2)
        for t in real[:f]:
            f_mask[row, t] = True
        for t in real[n - l:]:
            l_mask[row, t] = True
    return f_mask, l_mask


def phi(kind, v, w, b, h):
    r = householder_rows(v)
    source = h @ w.t() + b
    edit = source - h @ r.t() if kind == "loreft" else source
    return h + edit @ r


def forward(model, ids, mask, case, params):
    bsz, s = ids.shape
    positions = torch.arange(s)[None].expand(bsz, s)
    cos, sin = rope_cos_sin(model.inv_freq, positions)
    dtype = next(iter(params.values()))[0].dtype
    block = causal_padding_mask(mask.float()).to(dtype)
    x = model.embed_tokens(ids).to(block.dtype)
    f_mask, l_mask = position_masks(mask, case["first"], case["last"])
    for li, layer in enumerate(model.layers):
        x = layer(x, cos.to(x.dtype), sin.to(x.dtype), block)
        if li not in case["layers"]:
            continue
        if case["shared"]:
            p = params[f"layer_{li}"]
            x = torch.where(f_mask | l_mask, phi(case["kind"], *p, x), x)
        else:
            for group, m in (("last", l_mask), ("first", f_mask)):
                p = params[f"layer_{li}_{group}"]
                x = torch.where(m, phi(case["kind"], *p, x), x)
    return model.norm(x)


def intervention_names(case):
    if case["shared"]:
        return [f"layer_{l}" for l in case["layers"]]
    return [f"layer_{l}_{g}" for l in case["layers"] for g in ("first", "last")]


def main():
    deterministic(4321)
    gen = torch.Generator().manual_seed(4321)
    with open(fixture_path("models", "llama_gqa", "config.json")) as f:
        cfg = json.load(f)
    model = LlamaModel(cfg)
    state = load_file(fixture_path("models", "llama_gqa", "model.safetensors"))
    model.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    d = cfg["hidden_size"]

    ids = torch.tensor([[5, 17, 42, 9, 33], [7, 21, 11, 0, 0], [4, 0, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    out = {"input_ids": ids, "attention_mask": mask.float()}
    projection = torch.randn(3, 5, d, generator=gen)
    out["loss.projection"] = projection
    notes = {"input_ids": "int64 [3, 5], right padded (5, 3 and 1 real tokens)",
             "attention_mask": "1 = real token",
             "loss.projection": "P: loss = sum(last_hidden_state * P * attention_mask[..., None])"}
    checks = {}
    for case_name, case in CASES.items():
        r = case["rank"]
        params = {}
        for name in intervention_names(case):
            v = torch.randn(r, d, generator=gen)
            w = torch.randn(r, d, generator=gen) * 0.3
            b = torch.randn(r, generator=gen) * 0.3
            params[name] = [v, w, b]
            rot = householder_rows(v.double())
            a = torch.tril(v.double().t(), diagonal=-1)  # LAPACK compact form: column i = u_i below the unit diagonal
            tau = 2.0 / (1.0 + (a * a).sum(0))
            q = torch.linalg.householder_product(a, tau)
            checks[f"{case_name}.{name}.householder_vs_torch_householder_product"] = max_abs_diff(rot, q.t())
            checks[f"{case_name}.{name}.R_Rt_minus_I"] = max_abs_diff(rot @ rot.t(), torch.eye(r, dtype=torch.float64))
            out[f"{case_name}.{name}.rotate_layer.householder"] = v
            out[f"{case_name}.{name}.learned_source.weight"] = w
            out[f"{case_name}.{name}.learned_source.bias"] = b
            out[f"{case_name}.{name}.R"] = rot.float()
        notes[f"{case_name}."] = f"{case['kind']} case: layers {case['layers']}, r = {r}, positions f{case['first']}+l{case['last']}, share_weights {case['shared']}"

        results = {}
        for dtype in (torch.float32, torch.float64):
            model.to(dtype)
            leaves = {n: [t.to(dtype).clone().requires_grad_(True) for t in p] for n, p in params.items()}
            hidden = forward(model, ids, mask, case, leaves)
            loss = (hidden * projection.to(dtype) * mask[..., None].to(dtype)).sum()
            loss.backward()
            results[dtype] = (hidden.detach(), loss.detach(), {n: [t.grad for t in p] for n, p in leaves.items()})
        model.to(torch.float32)
        hidden, loss, grads = results[torch.float32]
        out[f"{case_name}.last_hidden_state"] = hidden
        out[f"{case_name}.loss"] = loss.reshape(1)
        for n, (gv, gw, gb) in grads.items():
            out[f"{case_name}.grad.{n}.rotate_layer.householder"] = gv
            out[f"{case_name}.grad.{n}.learned_source.weight"] = gw
            out[f"{case_name}.grad.{n}.learned_source.bias"] = gb
        h64, _, g64 = results[torch.float64]
        checks[f"{case_name}.float32_vs_float64_max_abs_diff.last_hidden_state"] = max_abs_diff(hidden, h64)
        checks[f"{case_name}.float32_vs_float64_max_abs_diff.grads"] = max(
            max_abs_diff(a, b) for n in grads for a, b in zip(grads[n], g64[n]))
        with torch.no_grad():
            plain = model(ids, mask.float())
        edited = (plain - hidden).abs().amax(-1)
        checks[f"{case_name}.rows_without_intervention_unchanged"] = float(edited[2, 0])
    notes.update({"loreft.grad.": "d loss / d the named tensor", "direft.grad.": "d loss / d the named tensor"})

    for k, v in checks.items():
        print(f"{k}: {v:.3g}")
    assert all(v < 1e-5 for k, v in checks.items() if "householder_vs" in k or "R_Rt" in k)
    assert all(v == 0.0 for k, v in checks.items() if "unchanged" in k)

    path = fixture_path("reft", "reft.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path)
    write_json({"script": "build/reference/reft_reference.py", "model": "models/llama_gqa",
                "formulas": {"loreft": "h + R^T (W h + b - R h)", "direft": "h + R^T (W h + b)",
                             "R": "(H_0 ... H_{r-1} I_{d x r})^T, u_i = e_i + V[i, j > i], H_i = I - 2 u_i u_i^T / |u_i|^2"},
                "checks": checks, "tensors": describe(out, notes)}, fixture_path("reft", "reft.json"))
    print("wrote", path, len(out), "tensors")


if __name__ == "__main__":
    main()
