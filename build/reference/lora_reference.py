"""LoRA reference fixtures for the C# tests (test/Microsoft.ML.Peft.Tests/Fixtures/lora/).

LoRA is re-implemented here in plain PyTorch (no `peft` package is installed), following PEFT's definitions:
    y = base(x) + scaling * B(A(dropout(x))),  A [r, in], B [out, r],  scaling = alpha / r  (alpha / sqrt(r) with rsLoRA)
and PEFT's file conventions (peft/utils/save_and_load.py, peft/config.py):
    * adapter_model.safetensors keys: "base_model.model.<module path>.lora_A.weight" / ".lora_B.weight" (adapter name
      removed), modules_to_save under the module's own path ("base_model.model.classifier.weight");
    * adapter_config.json: json.dumps(config_dict, indent=2, sort_keys=True), no trailing newline.

Writes (run with /usr/bin/python3 build/reference/lora_reference.py; ~1 s; byte-for-byte reproducible):
    lora_linear.safetensors/.json   one LoRA linear layer (in 6, out 5, bias, r 4, alpha 8) on x [2, 3, 6]: output,
                                    d loss / d A, d B, d x for loss = sum(y * R); the rsLoRA variant; the merged weight
    peft_adapter/                   a PEFT-layout adapter folder for the tiny model below (rank_pattern, alpha_pattern,
                                    modules_to_save), as a PEFT 0.15 save_pretrained writes it
    peft_model.safetensors/.json    the tiny model's base weights (state-dict names) + input and expected outputs with
                                    the adapter and without it
    lora_config_minimal.json        LoraConfig written with exactly the keys the C# writer emits, to check the writer
                                    byte for byte (non-ASCII, regex metacharacters, floats)
    stories260k_lora.json           PEFT's print_trainable_parameters line for LoRA on the real stories260K checkpoint
"""
import json
import math
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_common import REPO_ROOT, deterministic, describe, max_abs_diff, write_json  # noqa: E402
from safetensors_io import save_file  # noqa: E402

OUT = os.path.join(REPO_ROOT, "test", "Microsoft.ML.Peft.Tests", "Fixtures", "lora")


def path(*parts):
    p = os.path.join(OUT, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


class LoraLinear(nn.Module):
    """PEFT's lora.Linear in-memory layout: base_layer, lora_A/lora_B ModuleDicts keyed by adapter name."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, use_rslora: bool = False, adapter: str = "default"):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.ModuleDict({adapter: nn.Linear(base.in_features, rank, bias=False)})
        self.lora_B = nn.ModuleDict({adapter: nn.Linear(rank, base.out_features, bias=False)})
        self.scaling = {adapter: alpha / math.sqrt(rank) if use_rslora else alpha / rank}
        self.adapter = adapter
        self.enabled = True
        for p in base.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        y = self.base_layer(x)
        if not self.enabled:
            return y
        a, b = self.lora_A[self.adapter], self.lora_B[self.adapter]
        return y + b(a(x)) * self.scaling[self.adapter]

    def delta_weight(self):
        a, b = self.lora_A[self.adapter].weight, self.lora_B[self.adapter].weight
        return (b @ a) * self.scaling[self.adapter]


# --------------------------------------------------------------------------------------------- one LoRA linear layer

def lora_linear_fixture():
    gen = torch.Generator().manual_seed(1234)
    tensors, notes, checks = {}, {}, {}
    base = nn.Linear(6, 5)
    with torch.no_grad():
        base.weight.copy_(torch.randn(5, 6, generator=gen) * 0.5)
        base.bias.copy_(torch.randn(5, generator=gen) * 0.5)
    tensors["base.weight"], tensors["base.bias"] = base.weight.detach().clone(), base.bias.detach().clone()
    A = torch.randn(4, 6, generator=gen) * 0.5
    B = torch.randn(5, 4, generator=gen) * 0.5
    x = torch.randn(2, 3, 6, generator=gen)
    R = torch.randn(2, 3, 5, generator=gen)
    tensors.update({"lora_A": A, "lora_B": B, "input": x, "loss.projection": R})
    notes.update({
        "base.": "frozen nn.Linear(6, 5) weight [out, in] and bias",
        "lora_A": "A [r=4, in=6]", "lora_B": "B [out=5, r=4] (non-zero, as after training)",
        "input": "x [2, 3, 6]", "loss.projection": "R: loss = sum(y * R)",
    })
    for case, rslora in (("plain", False), ("rslora", True)):
        layer = LoraLinear(base, 4, 8.0, use_rslora=rslora)
        with torch.no_grad():
            layer.lora_A["default"].weight.copy_(A)
            layer.lora_B["default"].weight.copy_(B)
        xi = x.clone().requires_grad_(True)
        y = layer(xi)
        (y * R).sum().backward()
        tensors[f"{case}.output"] = y.detach()
        tensors[f"{case}.grad.lora_A"] = layer.lora_A["default"].weight.grad.detach().clone()
        tensors[f"{case}.grad.lora_B"] = layer.lora_B["default"].weight.grad.detach().clone()
        tensors[f"{case}.grad.input"] = xi.grad.detach().clone()
        merged = base.weight.detach() + layer.delta_weight().detach()
        tensors[f"{case}.merged.weight"] = merged
        notes[f"{case}."] = f"scaling {layer.scaling['default']}: output y, gradients of the loss, merged weight W + scaling*B@A"
        # Independent check: the merged linear layer gives the same output; float64 restatement of the forward.
        y_merged = nn.functional.linear(x, merged, base.bias)
        y64 = nn.functional.linear(x.double(), base.weight.double(), base.bias.double()) + \
            (x.double() @ A.double().T @ B.double().T) * layer.scaling["default"]
        checks[case] = {
            "scaling": layer.scaling["default"],
            "merged_vs_unmerged_max_abs_diff": max_abs_diff(y_merged, y),
            "float32_vs_float64_max_abs_diff": max_abs_diff(y, y64),
        }
    save_file(tensors, path("lora_linear.safetensors"))
    write_json({"config": {"in_features": 6, "out_features": 5, "r": 4, "lora_alpha": 8, "bias": True},
                "formula": "y = x W^T + b + scaling * (x A^T) B^T; loss = sum(y * R)",
                "checks": checks, "tensors": describe(tensors, notes)}, path("lora_linear.json"))


# --------------------------------------------------------------------------------------------- PEFT adapter folder

class Attn(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d, bias=False)


class Mlp(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.fc1 = nn.Linear(d, h)
        self.fc2 = nn.Linear(h, d)


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.attn = Attn(d)
        self.mlp = Mlp(d, h)

    def forward(self, x):
        x = x + self.attn.q_proj(x) * self.attn.v_proj(x)
        return x + self.mlp.fc2(torch.relu(self.mlp.fc1(x)))


class TinyModel(nn.Module):
    """Names as a HF model's: layers.{i}.attn.{q,v}_proj, layers.{i}.mlp.fc{1,2}, classifier."""

    def __init__(self, d=8, h=12, classes=3, n_layers=2):
        super().__init__()
        self.layers = nn.ModuleList([Block(d, h) for _ in range(n_layers)])
        self.classifier = nn.Linear(d, classes)

    def forward(self, x):
        for block in self.layers:
            x = block(x)
        return self.classifier(x)


PEFT_CONFIG = {
    # Every key a PEFT 0.15 LoraConfig.save_pretrained writes (dataclass fields; runtime_config is dropped).
    "alpha_pattern": {"layers.1.attn.v_proj": 16},
    "auto_mapping": None,
    "base_model_name_or_path": "tiny-test-model",
    "bias": "none",
    "corda_config": None,
    "eva_config": None,
    "exclude_modules": None,
    "fan_in_fan_out": False,
    "inference_mode": True,
    "init_lora_weights": True,
    "layer_replication": None,
    "layers_pattern": None,
    "layers_to_transform": None,
    "loftq_config": {},
    "lora_alpha": 8,
    "lora_bias": False,
    "lora_dropout": 0.05,
    "megatron_config": None,
    "megatron_core": "megatron.core",
    "modules_to_save": ["classifier"],
    "peft_type": "LORA",
    "r": 4,
    "rank_pattern": {"fc1": 2},
    "revision": None,
    "target_modules": ["v_proj", "q_proj", "fc1"],
    "task_type": None,
    "trainable_token_indices": None,
    "use_dora": False,
    "use_rslora": False,
}


def get_pattern_key(keys, name):
    """PEFT's get_pattern_key: first key (insertion order) with re.match(rf"(.*\\.)?({key})$", name)."""
    import re
    for key in keys:
        if re.match(rf"(.*\.)?({key})$", name):
            return key
    return name


def peft_fixture():
    gen = torch.Generator().manual_seed(99)
    model = TinyModel()
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    base_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 5, 8, generator=gen)
    with torch.no_grad():
        y_base = model(x)

    cfg = PEFT_CONFIG
    adapter, notes_layers = {}, {}
    targets = [n for n, m in model.named_modules()
               if isinstance(m, nn.Linear) and any(n == t or n.endswith("." + t) for t in cfg["target_modules"])]
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        r = cfg["rank_pattern"].get(get_pattern_key(cfg["rank_pattern"], name), cfg["r"])
        alpha = cfg["alpha_pattern"].get(get_pattern_key(cfg["alpha_pattern"], name), cfg["lora_alpha"])
        layer = LoraLinear(getattr(parent, child), r, alpha)
        with torch.no_grad():
            # "Trained" adapter: both A and B non-zero.
            layer.lora_A["default"].weight.copy_(torch.randn(r, layer.base_layer.in_features, generator=gen) * 0.3)
            layer.lora_B["default"].weight.copy_(torch.randn(layer.base_layer.out_features, r, generator=gen) * 0.3)
        setattr(parent, child, layer)
        notes_layers[name] = {"r": r, "lora_alpha": alpha, "scaling": layer.scaling["default"]}

    # modules_to_save: the adapter's trained copy of the classifier.
    head_copy = nn.Linear(8, 3)
    with torch.no_grad():
        head_copy.weight.copy_(torch.randn(3, 8, generator=gen) * 0.3)
        head_copy.bias.copy_(torch.randn(3, generator=gen) * 0.3)
    original_head = model.classifier
    model.classifier = head_copy
    with torch.no_grad():
        y_adapted = model(x)
    # PEFT's state dict: in-memory "<path>.lora_A.default.weight" -> "base_model.model.<path>.lora_A.weight".
    state = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLinear):
            state[f"base_model.model.{name}.lora_A.weight"] = module.lora_A["default"].weight.detach().clone()
            state[f"base_model.model.{name}.lora_B.weight"] = module.lora_B["default"].weight.detach().clone()
    state["base_model.model.classifier.weight"] = head_copy.weight.detach().clone()
    state["base_model.model.classifier.bias"] = head_copy.bias.detach().clone()
    save_file(state, path("peft_adapter", "adapter_model.safetensors"))
    with open(path("peft_adapter", "adapter_config.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True))

    # Independent check of the adapted output: merge every delta into a plain copy of the base model.
    merged = TinyModel()
    merged.load_state_dict(base_state)
    for name, module in model.named_modules():
        if isinstance(module, LoraLinear):
            with torch.no_grad():
                merged.get_submodule(name).weight += module.delta_weight()
    merged.classifier = head_copy
    with torch.no_grad():
        y_merged = merged(x)
    model.classifier = original_head

    tensors = dict(base_state)
    tensors.update({"input": x, "expected.adapted": y_adapted, "expected.base": y_base})
    save_file(tensors, path("peft_model.safetensors"))
    notes = {"input": "x [2, 5, 8]", "expected.adapted": "classifier logits with the adapter (trained classifier copy)",
             "expected.base": "logits of the base model (adapter disabled)"}
    notes.update({k: "base model parameter (state-dict name)" for k in base_state})
    write_json({
        "model": "h = h + q_proj(h) * v_proj(h); h = h + fc2(relu(fc1(h))) per layer; logits = classifier(h); d 8, mlp 12, 2 layers, 3 classes",
        "adapter": notes_layers,
        "checks": {"adapted_vs_merged_max_abs_diff": max_abs_diff(y_adapted, y_merged)},
        "tensors": describe(tensors, notes),
    }, path("peft_model.json"))


def minimal_config_fixture():
    """The exact key set the C# LoraConfig writer emits, with awkward values, serialised as PEFT does."""
    cfg = {
        "alpha_pattern": {"model.layers.0.self_attn.k_proj": 32, "o_proj": 0.5},
        "auto_mapping": None,
        "base_model_name_or_path": "caf\u00e9/model+v2",
        "bias": "lora_only",
        "exclude_modules": ["lm_head"],
        "fan_in_fan_out": False,
        "inference_mode": False,
        "init_lora_weights": "pissa_niter_4",
        "layer_replication": None,
        "layers_pattern": ["layers"],
        "layers_to_transform": [0, 2],
        "loftq_config": {},
        "lora_alpha": 16,
        "lora_bias": False,
        "lora_dropout": 0.05,
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "modules_to_save": ["score"],
        "peft_type": "LORA",
        "r": 16,
        "rank_pattern": {"^model\\.layers\\.\\d+\\.mlp\\..*": 4},
        "revision": None,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": True,
    }
    with open(path("lora_config_minimal.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True))


# --------------------------------------------------------------------------------------------- stories260K counts

class ModulesToSaveWrapper(nn.Module):
    """PEFT's wrapper for modules_to_save: the frozen original plus a trainable copy per adapter (both counted)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        import copy
        self.original_module = module
        self.modules_to_save = nn.ModuleDict({"default": copy.deepcopy(module)})
        module.requires_grad_(False)
        self.modules_to_save["default"].requires_grad_(True)


def peft_line(model: nn.Module) -> str:
    """PEFT's get_nb_trainable_parameters + print_trainable_parameters (named_parameters() dedupes tied weights)."""
    trainable_params, all_param = 0, 0
    for _, param in model.named_parameters():
        all_param += param.numel()
        if param.requires_grad:
            trainable_params += param.numel()
    return f"trainable params: {trainable_params:,d} || all params: {all_param:,d} || trainable%: {100 * trainable_params / all_param:.4f}"


def stories260k_counts():
    """LoRA on the real stories260K checkpoint (LlamaForSequenceClassification with a 2-label score head): PEFT's
    printed line for two configs. Only names and shapes matter here, so the score head is left at its init."""
    from nn_llama import LlamaWithHead
    from ref_common import SHARED
    from safetensors_io import load_file
    model_dir = os.path.join(SHARED, "models", "stories260K")
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    cfg["num_labels"] = 2
    cases = {
        "q_proj_v_proj_r8": {"targets": ["q_proj", "v_proj"], "r": 8, "all_linear": False},
        "all_linear_r16_seq_cls": {"targets": None, "r": 16, "all_linear": True},
    }
    result = {}
    for case, spec in cases.items():
        model = LlamaWithHead(cfg, "sequence")
        missing, unexpected = model.load_state_dict(load_file(os.path.join(model_dir, "model.safetensors")), strict=False)
        assert not unexpected and set(missing) == {"score.weight"}, (missing, unexpected)
        model.requires_grad_(False)
        names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        if spec["all_linear"]:
            # all-linear, task_type SEQ_CLS: every Linear but the score head, which becomes a modules_to_save.
            targets = [n for n in names if n != "score"]
            model.score = ModulesToSaveWrapper(model.score)
        else:
            targets = [n for n in names if any(n.endswith("." + t) for t in spec["targets"])]
        for name in targets:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            layer = LoraLinear(getattr(parent, child), spec["r"], 8.0)
            setattr(parent, child, layer)
        result[case] = {"r": spec["r"], "targets": len(targets), "line": peft_line(model)}
    write_json({"model": "../shared/models/stories260K as LlamaForSequenceClassification (2 labels, score 64->2 no bias)",
                "cases": result}, path("stories260k_lora.json"))


if __name__ == "__main__":
    deterministic(0)
    lora_linear_fixture()
    peft_fixture()
    minimal_config_fixture()
    stories260k_counts()
    print("wrote", OUT)
