"""Reference values for elementwise/normalisation ops, cross-entropy, AdamW, SGD (Nesterov) and the linear warm-up LR
schedule. Called by layers_reference.py; writes Fixtures/reference/layers/ops.{safetensors,json}.

Naming: "<entry>.input", "<entry>.output", "<entry>.grad_output" (the fixed upstream gradient R, i.e. the loss is
sum(output * R)), "<entry>.grad_input", "<entry>.grad_weight", ...; scalars are stored with shape [1].
"""
import json
import math

import torch
import torch.nn.functional as F

from ref_common import describe, fixture_path, max_abs_diff, write_json
from safetensors_io import save_file


def _with_grads(fn, inputs: dict, gen):
    """Runs fn(**inputs) on leaf copies, backprops sum(out * R) with a random R; returns (out, R, grads)."""
    leaves = {k: v.clone().requires_grad_(v.is_floating_point()) for k, v in inputs.items()}
    out = fn(**leaves)
    r = torch.randn(out.shape, generator=gen)
    (out * r).sum().backward()
    return out.detach(), r, {k: v.grad.detach() for k, v in leaves.items() if v.grad is not None}


def _activation_input(gen):
    # Covers the tails (|x| up to 12, where erf/tanh/sigmoid saturate), zero, and a dense random middle.
    fixed = torch.tensor([-12.0, -8.0, -5.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 5.0, 8.0, 12.0])
    return torch.cat([fixed, torch.randn(51, generator=gen) * 3.0])


def elementwise_entries(gen, tensors: dict, entries: dict, precision: dict):
    def add(name, fn, inputs, formula, fn64=None):
        out, r, grads = _with_grads(fn, inputs, gen)
        for k, v in inputs.items():
            tensors[f"{name}.{k}"] = v
        tensors[f"{name}.output"] = out
        tensors[f"{name}.grad_output"] = r
        for k, g in grads.items():
            tensors[f"{name}.grad_{k}"] = g
        entries[name] = formula
        ref = (fn64 or fn)(**{k: (v.double() if v.is_floating_point() else v) for k, v in inputs.items()})
        precision[name] = max_abs_diff(out, ref)

    x = torch.randn(4, 6, generator=gen) * 2
    x[1] += 80.0    # a row that overflows exp() without the max shift
    x[2, 3] = -1e4  # an effectively-zero probability
    add("softmax", lambda input: F.softmax(input, dim=-1), {"input": x},
        "softmax over the last axis: exp(x - max) / sum exp(x - max)")
    add("log_softmax", lambda input: F.log_softmax(input, dim=-1), {"input": x.clone()},
        "log_softmax over the last axis: x - max - log(sum exp(x - max))")
    a = _activation_input(gen)
    add("gelu_erf", lambda input: F.gelu(input), {"input": a}, "x/2 (1 + erf(x/sqrt(2)))")
    add("gelu_tanh", lambda input: F.gelu(input, approximate="tanh"), {"input": a.clone()},
        "x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (HF gelu_new / gelu_pytorch_tanh)")
    add("silu", lambda input: F.silu(input), {"input": a.clone()}, "x sigmoid(x)")

    ln_x = torch.randn(3, 4, 10, generator=gen)
    ln_x[1] += 100.0  # large mean: a one-pass E[x^2]-E[x]^2 variance loses digits here
    add("layer_norm", lambda input, weight, bias: F.layer_norm(input, (10,), weight, bias, 1e-5),
        {"input": ln_x, "weight": 1 + 0.2 * torch.randn(10, generator=gen), "bias": 0.2 * torch.randn(10, generator=gen)},
        "over the last axis (10): (x - mean) / sqrt(biased_var + 1e-5) * weight + bias")

    def rms(input, weight):
        return weight * (input * torch.rsqrt(input.pow(2).mean(-1, keepdim=True) + 1e-6))

    add("rms_norm", rms, {"input": torch.randn(3, 4, 10, generator=gen), "weight": 1 + 0.2 * torch.randn(10, generator=gen)},
        "HF LlamaRMSNorm over the last axis (10): weight * x / sqrt(mean(x^2) + 1e-6)")


def _ce_reference64(logits, target, weight, ignore_index, smoothing, reduction):
    """Float64 restatement of torch.nn.functional.cross_entropy (PyTorch 1.13), written out to document it."""
    logp = torch.log_softmax(logits.double(), dim=-1)
    n, c = logp.shape
    w = weight.double() if weight is not None else torch.ones(c, dtype=torch.float64)
    keep = target != ignore_index
    t = target.clamp(min=0)
    nll = -(logp[torch.arange(n), t] * w[t]) * keep
    smooth = -(logp * w).sum(-1) * keep
    if reduction == "mean":
        denom = w[t][keep].sum()
        nll_r, smooth_r = nll.sum() / denom, smooth.sum() / denom
    else:
        nll_r, smooth_r = nll.sum(), smooth.sum()
    return (1 - smoothing) * nll_r + smoothing / c * smooth_r


def cross_entropy_entries(gen, tensors, entries, precision):
    logits = torch.randn(6, 5, generator=gen) * 2
    target_all = torch.tensor([0, 3, 1, 4, 2, 3])
    target_ign = torch.tensor([0, -100, 1, 4, -100, 3])
    class_weight = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.25])
    variants = [
        ("plain", target_all, None, 0.0, "mean"),
        ("ignore_index", target_ign, None, 0.0, "mean"),
        ("label_smoothing", target_ign, None, 0.1, "mean"),
        ("class_weight", target_ign, class_weight, 0.0, "mean"),
        ("class_weight_label_smoothing", target_ign, class_weight, 0.1, "mean"),
        ("sum_label_smoothing", target_ign, None, 0.1, "sum"),
    ]
    for name, target, weight, smoothing, reduction in variants:
        key = "cross_entropy." + name
        x = logits.clone().requires_grad_(True)
        loss = F.cross_entropy(x, target, weight=weight, ignore_index=-100, label_smoothing=smoothing,
                               reduction=reduction)
        loss.backward()
        ref = _ce_reference64(logits, target, weight, -100, smoothing, reduction)
        assert abs(float(loss) - float(ref)) < 1e-5, (name, float(loss), float(ref))
        precision[key] = abs(float(loss) - float(ref))
        tensors[key + ".logits"] = logits.clone()
        tensors[key + ".target"] = target.clone()
        if weight is not None:
            tensors[key + ".class_weight"] = weight.clone()
        tensors[key + ".loss"] = loss.detach().reshape(1)
        tensors[key + ".grad_logits"] = x.grad.detach()
        entries[key] = {"ignore_index": -100, "label_smoothing": smoothing, "reduction": reduction,
                        "class_weight": weight is not None}
    entries["cross_entropy.formula"] = [
        "logp = log_softmax(logits); C = 5 classes; rows with target == -100 are dropped everywhere",
        "nll_i = -w[t_i] logp[i, t_i]; smooth_i = -sum_c w[c] logp[i, c]  (w = 1 without class_weight)",
        "mean: loss = (1 - eps) sum_i nll_i / D + eps / C * sum_i smooth_i / D, D = sum over kept rows of w[t_i]",
        "sum:  loss = (1 - eps) sum_i nll_i + eps / C * sum_i smooth_i",
        "grad_logits = d loss / d logits (no upstream projection: the loss itself is the scalar)",
    ]


def _adamw64(p, grads, lr, b1, b2, eps, wd):
    m, v, out = torch.zeros_like(p), torch.zeros_like(p), []
    for t, g in enumerate(grads, start=1):
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - (lr / (1 - b1 ** t)) * m / (v.sqrt() / math.sqrt(1 - b2 ** t) + eps)
        out.append(p)
    return out


def _sgd_nesterov64(p, grads, lr, momentum, wd):
    buf, out = None, []
    for g in grads:
        g = g + wd * p
        buf = g.clone() if buf is None else momentum * buf + g
        p = p - lr * (g + momentum * buf)
        out.append(p)
    return out


def optimizer_entries(gen, tensors, entries):
    params0 = {"param0": torch.randn(4, 3, generator=gen), "param1": torch.randn(5, generator=gen)}
    grads = [{k: torch.randn(v.shape, generator=gen) for k, v in params0.items()} for _ in range(3)]
    configs = {
        "adamw": (lambda ps: torch.optim.AdamW(ps, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01),
                  {"class": "torch.optim.AdamW", "lr": 1e-2, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
                   "amsgrad": False,
                   "formula": ["t = step (1-based); p = p * (1 - lr * wd)  (decoupled decay, applied first)",
                               "m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2  (m = v = 0 initially)",
                               "p = p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)"]}),
        "sgd_nesterov": (lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.0, weight_decay=0.01,
                                                    nesterov=True),
                         {"class": "torch.optim.SGD", "lr": 0.05, "momentum": 0.9, "dampening": 0.0,
                          "weight_decay": 0.01, "nesterov": True,
                          "formula": ["g' = g + wd * p  (L2 added to the gradient)",
                                      "buf = g' at step 1, else buf = momentum * buf + g'",
                                      "p = p - lr * (g' + momentum * buf)"]}),
    }
    for name, (make, info) in configs.items():
        ps = {k: torch.nn.Parameter(v.clone()) for k, v in params0.items()}
        opt = make(list(ps.values()))
        for k, v in params0.items():
            tensors[f"{name}.{k}.initial"] = v.clone()
        for step, g in enumerate(grads, start=1):
            for k, p in ps.items():
                p.grad = g[k].clone()
                tensors[f"{name}.{k}.grad.step{step}"] = g[k].clone()
            opt.step()
            for k, p in ps.items():
                tensors[f"{name}.{k}.after.step{step}"] = p.detach().clone()
        for k, v in params0.items():
            gs = [g[k].double() for g in grads]
            if name == "adamw":
                ref = _adamw64(v.double(), gs, 1e-2, 0.9, 0.999, 1e-8, 0.01)
            else:
                ref = _sgd_nesterov64(v.double(), gs, 0.05, 0.9, 0.01)
            for step, r in enumerate(ref, start=1):
                diff = max_abs_diff(tensors[f"{name}.{k}.after.step{step}"], r)
                assert diff < 1e-6, (name, k, step, diff)
        entries[name] = info


def schedule_entries(tensors, entries):
    """HF get_linear_schedule_with_warmup through torch's LambdaLR: lr used by optimizer step s+1 is lr[s]."""
    total, warmup, base = 100, 6, 2e-3

    def multiplier(s):
        if s < warmup:
            return float(s) / float(max(1, warmup))
        return max(0.0, float(total - s) / float(max(1, total - warmup)))

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, multiplier)
    lrs = []
    for _ in range(total + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    for s, lr in enumerate(lrs):
        assert lr == base * multiplier(s), (s, lr)
    tensors["schedule.linear_warmup.lr"] = torch.tensor(lrs, dtype=torch.float32)
    entries["schedule.linear_warmup"] = {
        "total_steps": total, "warmup_steps": warmup, "base_lr": base,
        "formula": "lr[s] = base * s / W for s < W, else base * max(0, (T - s) / (T - W)); s = 0..T",
        "meaning": "lr[s] is the rate used by the (s+1)-th optimizer step (lr[0] = 0)",
        "lr_float64": lrs,
    }


def write_ops_fixture():
    gen = torch.Generator().manual_seed(1003)
    tensors, entries, precision = {}, {}, {}
    elementwise_entries(gen, tensors, entries, precision)
    cross_entropy_entries(gen, tensors, entries, precision)
    optimizer_entries(gen, tensors, entries)
    schedule_entries(tensors, entries)
    path = fixture_path("layers", "ops.safetensors")
    save_file(tensors, path)
    notes = {}
    for name, info in entries.items():
        text = info if isinstance(info, str) else json.dumps(info) if name.startswith("cross_entropy.") else info.get(
            "class", info.get("formula", ""))
        notes[name + "."] = text if isinstance(text, str) else "; ".join(text)
    write_json({
        "script": "build/reference/ops_reference.py (run via layers_reference.py)",
        "torch": torch.__version__,
        "naming": "<entry>.<input name>, <entry>.output, <entry>.grad_output = R (loss = sum(output * R)), "
                  "<entry>.grad_<input name> = d loss / d input; optimizers: <opt>.<param>.initial, "
                  "<opt>.<param>.grad.step<k>, <opt>.<param>.after.step<k> (k = 1..3)",
        "entries": entries,
        "float32_vs_float64_max_abs_diff": precision,
        "tensors": describe(tensors, notes),
    }, path[:-len(".safetensors")] + ".json")
    return math.nan
