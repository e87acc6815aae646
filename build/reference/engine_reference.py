"""Reference values for the tensor engine's tests (run with /usr/bin/python3, which has PyTorch 1.13).

Writes test/Microsoft.ML.Peft.Tests/Fixtures/engine/engine_reference.json:
  cross_entropy  - logits, targets, weights and torch.nn.functional.cross_entropy losses + logit gradients for
                   combinations of ignore_index, label_smoothing, class weights and reduction
  adamw / sgd    - parameters after each of 3 steps of torch.optim.AdamW / torch.optim.SGD given fixed gradients
  schedules      - learning rates of transformers' get_linear_schedule_with_warmup / get_cosine_schedule_with_warmup
                   (the lambda formulas, evaluated here with torch.optim.lr_scheduler.LambdaLR)
  clip_grad_norm - torch.nn.utils.clip_grad_norm_ return value and clipped gradients
  gelu           - torch gelu (erf and tanh) values and gradients in float32 and float64
  layer_norm / rms_norm - forward and gradients on a small input
  rng            - golden values of the engine's counter-based generator (SplitMix64 at positions), computed here
                   independently from the published SplitMix64 constants
Deterministic: fixed seeds, float32, one thread; re-running reproduces the file byte for byte.
"""
import json, math, os
import torch

torch.manual_seed(1234)
torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "Microsoft.ML.Peft.Tests", "Fixtures", "engine", "engine_reference.json")


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def cross_entropy_cases():
    n, c = 6, 5
    logits = torch.randn(n, c) * 2
    targets = torch.tensor([1, 0, 4, -100, 2, 4])
    weights = torch.tensor([0.5, 2.0, 1.0, 0.25, 1.5])
    cases = []
    for smoothing in (0.0, 0.1):
        for use_w in (False, True):
            for reduction in ("mean", "sum", "none"):
                x = logits.clone().requires_grad_(True)
                loss = torch.nn.functional.cross_entropy(x, targets, weight=weights if use_w else None,
                                                         ignore_index=-100, label_smoothing=smoothing, reduction=reduction)
                r = torch.linspace(0.5, 1.5, loss.numel()).reshape(loss.shape)
                (loss * r).sum().backward()
                cases.append({"label_smoothing": smoothing, "weighted": use_w, "reduction": reduction,
                              "loss": flat(loss), "upstream": flat(r), "grad": flat(x.grad)})
    return {"shape": [n, c], "logits": flat(logits), "targets": targets.tolist(), "weights": flat(weights), "cases": cases}


def optimizer_run(make):
    p1 = torch.tensor([[0.5, -1.0, 2.0], [0.1, 0.0, -0.3]], requires_grad=True)
    p2 = torch.tensor([1.0, -2.0, 0.25], requires_grad=True)
    grads = [[torch.tensor([[0.1, -0.2, 0.3], [1.0, -0.5, 0.0]]), torch.tensor([0.01, 0.02, -0.03])],
             [torch.tensor([[-0.3, 0.2, 0.1], [0.5, 0.5, -1.0]]), torch.tensor([0.2, -0.1, 0.0])],
             [torch.tensor([[0.05, 0.0, -0.05], [-2.0, 1.0, 0.3]]), torch.tensor([-0.5, 0.5, 1.0])]]
    opt = make([p1, p2])
    steps = []
    for g1, g2 in grads:
        p1.grad = g1.clone()
        p2.grad = g2.clone()
        opt.step()
        steps.append({"p1": flat(p1), "p2": flat(p2)})
    return {"p1": [[0.5, -1.0, 2.0], [0.1, 0.0, -0.3]], "p2": [1.0, -2.0, 0.25],
            "grads": [{"g1": flat(a), "g2": flat(b)} for a, b in grads], "steps": steps}


def schedules():
    def linear(warmup, total):
        return lambda s: s / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))

    def cosine(warmup, total, cycles=0.5):
        def f(s):
            if s < warmup:
                return s / max(1, warmup)
            progress = (s - warmup) / max(1, total - warmup)
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * progress)))
        return f

    out = {}
    for name, fn in (("linear", linear(3, 10)), ("cosine", cosine(3, 10))):
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, fn)
        lrs = []
        for _ in range(12):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out[name] = {"base_lr": 0.1, "warmup": 3, "total": 10, "lrs": lrs}
    return out


def clip_case():
    a = torch.zeros(2, 3, requires_grad=True)
    b = torch.zeros(4, requires_grad=True)
    a.grad = torch.tensor([[3.0, -4.0, 1.0], [0.5, 2.0, -1.0]])
    b.grad = torch.tensor([1.0, 2.0, -2.0, 0.5])
    norm = torch.nn.utils.clip_grad_norm_([a, b], max_norm=2.0)
    return {"ga": [[3.0, -4.0, 1.0], [0.5, 2.0, -1.0]], "gb": [1.0, 2.0, -2.0, 0.5], "max_norm": 2.0,
            "norm": float(norm), "clipped_a": flat(a.grad), "clipped_b": flat(b.grad)}


def gelu_case():
    xs = torch.tensor([-8.0, -5.5, -3.0, -1.5, -0.7, -0.1, 0.0, 0.2, 0.9, 1.7, 3.3, 6.0])
    out = {"x": flat(xs)}
    for approx in ("none", "tanh"):
        for dtype in (torch.float32, torch.float64):
            x = xs.to(dtype).clone().requires_grad_(True)
            y = torch.nn.functional.gelu(x, approximate=approx)
            y.sum().backward()
            key = f"{approx}_{'f32' if dtype == torch.float32 else 'f64'}"
            out[key] = {"y": flat(y), "grad": flat(x.grad)}
    return out


def norm_cases():
    x = torch.randn(3, 8, dtype=torch.float64)
    w = torch.randn(8, dtype=torch.float64)
    b = torch.randn(8, dtype=torch.float64)
    r = torch.randn(3, 8, dtype=torch.float64)
    xl, wl, bl = [t.clone().requires_grad_(True) for t in (x, w, b)]
    y = torch.nn.functional.layer_norm(xl, (8,), wl, bl, eps=1e-5)
    (y * r).sum().backward()
    ln = {"y": flat(y), "gx": flat(xl.grad), "gw": flat(wl.grad), "gb": flat(bl.grad)}
    xr, wr = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    var = xr.pow(2).mean(-1, keepdim=True)
    y2 = xr * torch.rsqrt(var + 1e-6) * wr
    (y2 * r).sum().backward()
    rms = {"y": flat(y2), "gx": flat(xr.grad), "gw": flat(wr.grad)}
    return {"x": flat(x), "w": flat(w), "b": flat(b), "r": flat(r), "layer_norm": ln, "rms_norm": rms}


def rng_golden():
    mask = (1 << 64) - 1
    golden = 0x9E3779B97F4A7C15

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    out = []
    for seed in (0, 42, 2**63 + 5):
        key = mix(seed ^ 0x6A09E667F3BCC909)
        bits = [mix((key + (i * golden)) & mask) for i in range(6)]
        out.append({"seed": str(seed), "bits": [str(v) for v in bits], "uniform": [(v >> 40) / 16777216.0 for v in bits]})
    return out


def main():
    data = {
        "cross_entropy": cross_entropy_cases(),
        "adamw": optimizer_run(lambda ps: torch.optim.AdamW(ps, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)),
        "sgd_nesterov": optimizer_run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        "sgd_momentum_dampening": optimizer_run(lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.3)),
        "schedules": schedules(),
        "clip_grad_norm": clip_case(),
        "gelu": gelu_case(),
        "norms": norm_cases(),
        "rng": rng_golden(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
