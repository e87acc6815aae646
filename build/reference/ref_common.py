"""Shared plumbing for the reference scripts: determinism, paths, JSON output, random initialisation."""
import json
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FIXTURES = os.path.join(REPO_ROOT, "test", "Microsoft.ML.Peft.Tests", "Fixtures", "reference")
SHARED = os.path.abspath(os.environ.get("PEFT_SHARED") or os.path.join(REPO_ROOT, "..", "shared"))
# Additive mask value HF uses for "may not attend": the most negative finite float32.
MASK_MIN = torch.finfo(torch.float32).min


def deterministic(seed: int, threads: int = 1) -> None:
    """Seeds torch, forces float32 and pins the thread count so fixture bytes are reproducible."""
    torch.manual_seed(seed)
    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(threads)


def fixture_path(*parts: str) -> str:
    path = os.path.join(FIXTURES, *parts)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def _to_json(obj, indent: int) -> str:
    """json.dumps with 2-space indent, except that lists of numbers (and short lists of strings) stay on one line."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {_to_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        flat = json.dumps(list(obj), ensure_ascii=False)
        if all(not isinstance(v, (dict, list, tuple)) for v in obj) and (
                len(flat) <= 100 or all(not isinstance(v, str) for v in obj)):
            return flat
        return "[\n" + ",\n".join(inner + _to_json(v, indent + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False)


def write_json(obj, path: str) -> None:
    """Writes JSON deterministically (insertion order, 2-space indent, short lists inline, trailing newline)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(_to_json(obj, 0))
        f.write("\n")


def randn(gen: torch.Generator, *shape, std: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen) * std


def init_random_(module: torch.nn.Module, gen: torch.Generator, std: float = 0.2) -> None:
    """Re-initialises every parameter: norm weights 1 + N(0, std^2), everything else N(0, std^2).

    A large std (0.2 instead of HF's 0.02) makes every weight matter, so a wrong index or a transposed matrix shows up
    as a large error instead of hiding under round-off. Parameters are visited in sorted-name order so the values do
    not depend on module construction order.
    """
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name in sorted(params):
            p = params[name]
            noise = torch.randn(p.shape, generator=gen) * std
            is_norm_weight = name.endswith("weight") and ("norm" in name.lower() or "ln_" in name) and p.dim() == 1
            p.copy_(1.0 + noise if is_norm_weight else noise)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


def describe(tensors: dict, notes: dict) -> dict:
    """JSON table of every tensor in a fixture: dtype, shape and what it is (from `notes`, matched by exact name or by
    the longest prefix ending in '.')."""
    table = {}
    for name in sorted(tensors):
        t = tensors[name]
        note = notes.get(name)
        if note is None:
            prefixes = [k for k in notes if k.endswith(".") and name.startswith(k)]
            note = notes[max(prefixes, key=len)] if prefixes else ""
        table[name] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "meaning": note}
    return table
