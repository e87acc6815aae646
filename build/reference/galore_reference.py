"""GaLore reference (Zhao et al. 2024) for test/.../GaLore: galore_torch's "std" projector with torch.optim.AdamW's
float32 arithmetic in the projected space (our GaLoreAdamW's documented convention).

For an m x n gradient G the projector refreshes at steps 0, T, 2T, ... (counted before the increment, as galore_torch):
m >= n uses P = Vh[:r] (R = G P^T, back = R P), m < n uses P = U[:, :r] (R = P^T G, back = P R). Each basis vector
is sign-normalised so that its largest-magnitude entry is positive (moments are not rotated at a refresh, so the
sign convention is part of the algorithm's definition). The update per step:
  p <- p (1 - lr wd);  m, v Adam moments of R;  p <- p - scale * back(lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps))
A bias vector is trained with plain torch.optim.AdamW in the same run.

Writes test/Microsoft.ML.Peft.Tests/Fixtures/galore/galore_reference.json.
Run: /usr/bin/python3 build/reference/galore_reference.py
"""
import json
import math
import os

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "Microsoft.ML.Peft.Tests", "Fixtures", "galore", "galore_reference.json")
LR, BETA1, BETA2, EPS, WD = 1e-2, 0.9, 0.999, 1e-8, 0.01
RANK, GAP, SCALE, STEPS = 2, 2, 0.25, 5


def basis_of(grad, rank):
    u, s, vh = torch.linalg.svd(grad.double(), full_matrices=False)
    if grad.shape[0] >= grad.shape[1]:
        p = vh[:rank, :].float()                     # rows are vectors
        for i in range(rank):
            j = torch.argmax(p[i].abs())
            if p[i, j] < 0:
                p[i] = -p[i]
    else:
        p = u[:, :rank].float().contiguous()         # columns are vectors
        for i in range(rank):
            j = torch.argmax(p[:, i].abs())
            if p[j, i] < 0:
                p[:, i] = -p[:, i]
    return p


class GaLoreParam:
    def __init__(self, w):
        self.w, self.step, self.p, self.m, self.v = w, 0, None, None, None

    def update(self, g):
        tall = g.shape[0] >= g.shape[1]
        if self.step % GAP == 0:
            self.p = basis_of(g, RANK)
        r = g @ self.p.t() if tall else self.p.t() @ g
        if self.m is None:
            self.m, self.v = torch.zeros_like(r), torch.zeros_like(r)
        self.step += 1
        bc1 = 1 - BETA1 ** self.step
        bc2 = 1 - BETA2 ** self.step
        self.w.mul_(1 - LR * WD)
        self.m.mul_(BETA1).add_(r, alpha=1 - BETA1)
        self.v.mul_(BETA2).addcmul_(r, r, value=1 - BETA2)
        denom = (self.v.sqrt() / math.sqrt(bc2)).add_(EPS)
        n = -(LR / bc1) * self.m / denom
        back = n @ self.p if tall else self.p @ n
        self.w.add_(back, alpha=SCALE)


def main():
    torch.manual_seed(7)
    w_tall = torch.randn(6, 4)
    w_wide = torch.randn(3, 5)
    bias = torch.randn(4).requires_grad_()
    grads = [{"tall": torch.randn(6, 4), "wide": torch.randn(3, 5), "bias": torch.randn(4)} for _ in range(STEPS)]
    out = {"lr": LR, "beta1": BETA1, "beta2": BETA2, "eps": EPS, "weight_decay": WD, "rank": RANK,
           "update_proj_gap": GAP, "scale": SCALE, "torch": torch.__version__,
           "init": {"tall": w_tall.flatten().tolist(), "wide": w_wide.flatten().tolist(), "bias": bias.detach().tolist()},
           "grads": [{k: v.flatten().tolist() for k, v in g.items()} for g in grads], "steps": []}
    tall, wide = GaLoreParam(w_tall.clone()), GaLoreParam(w_wide.clone())
    adamw = torch.optim.AdamW([bias], lr=LR, betas=(BETA1, BETA2), eps=EPS, weight_decay=WD)
    for g in grads:
        tall.update(g["tall"])
        wide.update(g["wide"])
        bias.grad = g["bias"].clone()
        adamw.step()
        out["steps"].append({"tall": tall.w.flatten().tolist(), "wide": wide.w.flatten().tolist(), "bias": bias.detach().flatten().tolist()})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f)
        f.write("\n")
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
