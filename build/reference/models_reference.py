"""Tiny random-weight checkpoints in Hugging Face layout for bert, roberta, distilbert, gpt2, gpt_neox, llama_gqa and
qwen2, with the outputs the plain-PyTorch reference models (nn_*.py) give for a padded batch.

Run:  /usr/bin/python3 build/reference/models_reference.py
Writes test/Microsoft.ML.Peft.Tests/Fixtures/reference/models/<arch>/:
  config.json + model.safetensors        the main checkpoint (encoders: *ForSequenceClassification,
                                         decoders: *ForCausalLM)
  <head>/config.json + model.safetensors the second checkpoint, same backbone weights (encoders: token_classification/
                                         = *ForTokenClassification; decoders: sequence_classification/ =
                                         *ForSequenceClassification)
  pytorch_model.bin                      (bert only) the main state dict via torch.save, zip format
  expected.safetensors + expected.json   inputs and expected outputs
Decoders also get (written after everything above, from their own generator, so the bytes above do not change):
  token_classification/config.json + model.safetensors   *ForTokenClassification, same backbone weights, 5 labels
  expected_token_classification.safetensors              per variant: input_ids, attention_mask,
                                                         token_classification.logits [2, 9, 5]
"""
import collections
import copy
import os

import torch
import torch.nn.functional as F

from model_configs import ARCHS, TOKEN_LABELS, config
from model_notes import describe_arch
from nn_bert import roberta_position_ids
from ref_common import deterministic, describe, fixture_path, init_random_, max_abs_diff, write_json
from safetensors_io import load_file, save_file

SEQ = 9
REAL_LEN_ROW1 = 6  # row 1 has 6 real tokens and 3 pads; row 0 has 9 real tokens


def make_inputs(arch: str, cfg: dict, gen: torch.Generator, padding: str) -> dict:
    """Batch of 2 x 9 ids; row 1 padded (pad_token_id) on the given side. Real ids avoid the special ids 0..3 so no
    real token equals pad_token_id."""
    vocab, pad = cfg["vocab_size"], cfg["pad_token_id"]
    ids = torch.randint(4, vocab, (2, SEQ), generator=gen)
    if arch == "bert":
        ids[:, 0] = 2  # stands in for [CLS]
    if arch == "roberta":
        ids[:, 0] = cfg["bos_token_id"]
    mask = torch.ones(2, SEQ)
    if padding == "right":
        ids[1, REAL_LEN_ROW1:] = pad
        mask[1, REAL_LEN_ROW1:] = 0
    else:
        ids[1] = torch.cat([torch.full((SEQ - REAL_LEN_ROW1,), pad), ids[1, :REAL_LEN_ROW1]])
        mask[1, :SEQ - REAL_LEN_ROW1] = 0
    inputs = {"input_ids": ids, "attention_mask": mask}
    if arch == "bert":
        # Sentence pair in row 0 (segment B from position 5), row 1 segment B at 4..5; pads are type 0.
        types = torch.zeros(2, SEQ, dtype=torch.int64)
        types[0, 5:] = 1
        types[1, 4:REAL_LEN_ROW1] = 1
        inputs["token_type_ids"] = types
    elif arch == "roberta":
        inputs["token_type_ids"] = torch.zeros(2, SEQ, dtype=torch.int64)
    if arch == "roberta":
        inputs["position_ids"] = roberta_position_ids(ids, pad)
    else:
        inputs["position_ids"] = torch.arange(SEQ)[None].repeat(2, 1)
    return inputs


def forward(arch: str, model, inputs: dict) -> dict:
    """Returns {"logits", "hidden", optionally "pooler_output"} in the model's dtype."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    if arch in ("bert", "roberta"):
        logits, hidden, pooled = model(ids, mask, inputs["token_type_ids"])
        out = {"logits": logits, "hidden": hidden}
        if pooled is not None:
            out["pooler_output"] = pooled
        return out
    logits, hidden = model(ids, mask)
    return {"logits": logits, "hidden": hidden}


def capture_layers(layers, run):
    """Runs `run()` recording the input of layer 0 (embedding output) and every layer's output."""
    seen = {}
    handles = [layers[0].register_forward_pre_hook(lambda m, a: seen.__setitem__("embeddings_output", a[0].detach()))]
    for i, layer in enumerate(layers):
        handles.append(layer.register_forward_hook(
            lambda m, a, out, i=i: seen.__setitem__(f"layer_outputs.{i}", out.detach())))
    try:
        result = run()
    finally:
        for h in handles:
            h.remove()
    return result, seen


def causal_lm_loss(logits, ids, mask):
    """HF shifted LM loss. Labels = ids, -100 at pads and at each row's first real token (under left padding that
    token would be predicted from a padding position, whose hidden state is undefined)."""
    labels = ids.masked_fill(mask == 0, -100)
    first_real = mask.argmax(-1)
    labels[torch.arange(ids.shape[0]), first_real] = -100
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
    return labels, loss


def build_pair(arch: str, gen: torch.Generator):
    kind, base, heads, layers_of = ARCHS[arch]
    (main_head, main_cls, main_n, main_build), (other_head, other_cls, other_n, other_build) = heads
    main_cfg, other_cfg = config(base, main_cls, main_n), config(base, other_cls, other_n)
    main, other = main_build(main_cfg), other_build(other_cfg)
    init_random_(main, gen, std=0.2)
    init_random_(other, gen, std=0.2)
    backbone = ("bert.", "roberta.", "distilbert.", "transformer.", "gpt_neox.", "model.")
    shared = {k: v for k, v in main.state_dict().items() if k.startswith(backbone) and k in other.state_dict()}
    other.load_state_dict(shared, strict=False)
    return kind, (main_head, main_cfg, main.eval()), (other_head, other_cfg, other.eval()), layers_of


def write_checkpoint(folder: str, cfg: dict, model) -> None:
    path = fixture_path(*folder.split("/"), "model.safetensors")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    save_file(state, path)
    assert all(torch.equal(state[k], v) for k, v in load_file(path).items())
    write_json(cfg, os.path.join(os.path.dirname(path), "config.json"))


def write_bert_bin(model) -> str:
    """torch.save of the state dict (zip format). Like checkpoints from older transformers versions it also holds the
    int64 buffer bert.embeddings.position_ids [1, max_positions], which a loader must tolerate."""
    state = collections.OrderedDict()
    state["bert.embeddings.position_ids"] = torch.arange(64).unsqueeze(0)
    for k, v in model.state_dict().items():
        state[k] = v.detach().clone()
    path = fixture_path("models", "bert", "pytorch_model.bin")
    torch.save(state, path)
    return path


def expected_for(arch, kind, main, other, layers_of, inputs, variant, tensors, precision):
    (main_head, _, main_model), (other_head, _, other_model) = main, other
    for k, v in inputs.items():
        tensors[f"{variant}.{k}"] = v
    with torch.no_grad():
        main_out, seen = capture_layers(layers_of(main_model), lambda: forward(arch, main_model, inputs))
        other_out = forward(arch, other_model, inputs)
        assert max_abs_diff(main_out["hidden"], other_out["hidden"]) == 0.0  # same backbone weights
        main64 = forward(arch, copy.deepcopy(main_model).double(), inputs)
        other64 = forward(arch, copy.deepcopy(other_model).double(), inputs)
    for k, v in seen.items():
        tensors[f"{variant}.{k}"] = v
    tensors[f"{variant}.last_hidden_state"] = main_out["hidden"]
    if "pooler_output" in main_out:
        tensors[f"{variant}.pooler_output"] = main_out["pooler_output"]
    names = {"sequence": "sequence_classification.logits", "token": "token_classification.logits",
             "causal_lm": "causal_lm.logits"}
    tensors[f"{variant}.{names[main_head]}"] = main_out["logits"]
    tensors[f"{variant}.{names[other_head]}"] = other_out["logits"]
    valid = inputs["attention_mask"].bool()  # compare decoders only at real tokens
    precision[f"{variant}.last_hidden_state"] = max_abs_diff(main_out["hidden"][valid], main64["hidden"][valid])
    precision[f"{variant}.{names[main_head]}"] = max_abs_diff(
        main_out["logits"][valid] if main_head != "sequence" else main_out["logits"],
        main64["logits"][valid] if main_head != "sequence" else main64["logits"])
    precision[f"{variant}.{names[other_head]}"] = max_abs_diff(
        other_out["logits"][valid] if other_head != "sequence" else other_out["logits"],
        other64["logits"][valid] if other_head != "sequence" else other64["logits"])
    if kind == "decoder":
        tensors[f"{variant}.sequence_classification.pooled_index"] = \
            (torch.arange(SEQ)[None] * (inputs["input_ids"] != other[1]["pad_token_id"]).long()).argmax(-1)
        labels, loss = causal_lm_loss(main_out["logits"], inputs["input_ids"], inputs["attention_mask"])
        tensors[f"{variant}.causal_lm.labels"] = labels
        tensors[f"{variant}.causal_lm.loss"] = loss.reshape(1)
    return main_out, other_out


def unpadded_check(arch, kind, model, inputs, out, side) -> float:
    """Independent check of masking: row 1's real tokens run alone (batch of one, no padding) must reproduce the
    padded batch's values at those tokens. Exact up to round-off for right padding (every architecture) and for left
    padding with rotary positions (RoPE scores depend only on position differences); GPT-2's absolute positions
    shift under left padding, so it is not checked there."""
    if side == "left" and arch == "gpt2":
        return None
    real = inputs["attention_mask"][1].bool()
    alone = {k: v[1:, real] for k, v in inputs.items() if k != "position_ids"}
    alone["position_ids"] = inputs["position_ids"][1:, real]
    with torch.no_grad():
        ref = forward(arch, model, alone)
    diff = max_abs_diff(out["hidden"][1, real], ref["hidden"][0])
    assert diff < 2e-5, (arch, side, diff)
    return diff


def arch_fixture(arch: str, seed: int):
    gen = torch.Generator().manual_seed(seed)
    kind, main, other, layers_of = build_pair(arch, gen)
    folder = f"models/{arch}"
    write_checkpoint(folder, main[1], main[2])
    other_dir = {"token": "token_classification", "sequence": "sequence_classification"}[other[0]]
    write_checkpoint(f"{folder}/{other_dir}", other[1], other[2])
    extra = {}
    if arch == "bert":
        extra["pytorch_model.bin"] = os.path.basename(write_bert_bin(main[2]))
    tensors, precision, checks = {}, {}, {}
    for side in (["right"] if kind == "encoder" else ["right", "left"]):
        inputs = make_inputs(arch, main[1], torch.Generator().manual_seed(seed + 1), side)
        main_out, _ = expected_for(arch, kind, main, other, layers_of, inputs, f"{side}_padding", tensors, precision)
        diff = unpadded_check(arch, kind, main[2], inputs, main_out, side)
        if diff is not None:
            checks[f"{side}_padding row 1 real tokens vs the same tokens unpadded, max_abs_diff"] = diff
    path = fixture_path("models", arch, "expected.safetensors")
    save_file(tensors, path)
    write_json(describe_arch(arch, kind, main, other, other_dir, extra, tensors, precision, checks),
               path[:-len(".safetensors")] + ".json")


# Decoder *ForTokenClassification: HF class and head name. Llama/Mistral/Qwen2 call the per-token Linear `score`
# (GenericForTokenClassification), GPT-2 and GPT-NeoX call it `classifier`; all have a bias and dropout before it.
DECODER_TOKEN_HEADS = {
    "gpt2": ("GPT2ForTokenClassification", "classifier"),
    "gpt_neox": ("GPTNeoXForTokenClassification", "classifier"),
    "llama_gqa": ("LlamaForTokenClassification", "score"),
    "qwen2": ("Qwen2ForTokenClassification", "score"),
}


class DecoderForTokenClassification(torch.nn.Module):
    """`<prefix>.*` backbone (taken from a *WithHead reference model) plus `<head>` = Linear(hidden, num_labels, bias)
    applied to every position; dropout is the identity in eval mode. forward returns (logits, last_hidden_state)."""

    def __init__(self, with_head, prefix: str, head: str, hidden: int, n_labels: int):
        super().__init__()
        self.prefix, self.head = prefix, head
        setattr(self, prefix, copy.deepcopy(getattr(with_head, prefix)))
        setattr(self, head, torch.nn.Linear(hidden, n_labels, bias=True))

    def forward(self, input_ids, attention_mask):
        hidden = getattr(self, self.prefix)(input_ids, attention_mask)
        return getattr(self, self.head)(hidden), hidden


def decoder_token_classification_fixture(arch: str, seed: int):
    """Token-classification checkpoint for a decoder: the backbone of models/<arch>/model.safetensors (read back from
    the file just written, so the weights are exactly those) plus a random head, and its logits for the same padded
    batches as expected.safetensors."""
    _, base, heads, _ = ARCHS[arch]
    hf_class, head = DECODER_TOKEN_HEADS[arch]
    main_cfg = config(base, heads[0][1], heads[0][2])
    main = heads[0][3](main_cfg)
    main.load_state_dict(load_file(fixture_path("models", arch, "model.safetensors")), strict=True)
    prefix = {"gpt2": "transformer", "gpt_neox": "gpt_neox"}.get(arch, "model")
    cfg = config(base, hf_class, TOKEN_LABELS)
    hidden = base.get("hidden_size", base.get("n_embd"))
    model = DecoderForTokenClassification(main, prefix, head, hidden, TOKEN_LABELS)
    init_random_(getattr(model, head), torch.Generator().manual_seed(seed + 2), std=0.2)
    model.eval()
    write_checkpoint(f"models/{arch}/token_classification", cfg, model)
    tensors = {}
    for side in ("right", "left"):
        inputs = make_inputs(arch, main_cfg, torch.Generator().manual_seed(seed + 1), side)
        with torch.no_grad():
            logits, _ = model(inputs["input_ids"], inputs["attention_mask"])
            logits64, _ = copy.deepcopy(model).double()(inputs["input_ids"], inputs["attention_mask"])
        valid = inputs["attention_mask"].bool()
        assert max_abs_diff(logits[valid], logits64[valid]) < 1e-5, (arch, side)
        tensors[f"{side}_padding.input_ids"] = inputs["input_ids"]
        tensors[f"{side}_padding.attention_mask"] = inputs["attention_mask"]
        tensors[f"{side}_padding.token_classification.logits"] = logits
    save_file(tensors, fixture_path("models", arch, "expected_token_classification.safetensors"))


def main():
    deterministic(seed=3000, threads=1)
    for i, arch in enumerate(ARCHS):
        arch_fixture(arch, seed=3100 + 10 * i)
        print(f"wrote models/{arch}")
    for i, arch in enumerate(ARCHS):
        if arch in DECODER_TOKEN_HEADS:
            decoder_token_classification_fixture(arch, seed=3100 + 10 * i)
            print(f"wrote models/{arch}/token_classification")


if __name__ == "__main__":
    main()
