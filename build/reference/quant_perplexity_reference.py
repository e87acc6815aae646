#!/usr/bin/python3
"""Perplexity of stories260K with its linear weights in float32, NF4 (+ double quantization), FP4, Int4 (block 64)
and row-wise int8, on a few short TinyStories-style texts written for this test. The weights are rounded with the
independent quantizer of quant_reference.py (quantize, then dequantize) and the model is the plain-PyTorch Llama of
nn_llama.py; perplexity = exp(mean NLL of every token after BOS), each text scored on its own, in float64 from
float32 logits. Run:

    cd build/reference && /usr/bin/python3 quant_perplexity_reference.py

Writes test/Microsoft.ML.Peft.Tests/Fixtures/reference/quant/perplexity_stories260k.json (texts, token ids, perplexities).
"""
import torch

import quant_reference as qr
from ref_common import deterministic, fixture_path, write_json
from stories260k_reference import BOS, load_stories260k, tokenizer

TEXTS = [
    "Once upon a time, there was a little girl named Lily. She loved to play in the park with her red ball. One day, "
    "the ball rolled into the pond. Lily was sad, but a kind duck pushed the ball back to her. Lily smiled and said "
    "thank you to the duck.",
    "Tom had a big dog named Max. Max liked to run and jump in the garden. One morning, Max found a small bird under a "
    "tree. Tom and Max helped the bird go back to its nest. The bird sang a happy song for them.",
    "Sue wanted to bake a cake for her mom. She got flour, eggs and milk from the kitchen. Her dad helped her mix "
    "everything in a big bowl. When the cake was ready, her mom hugged her. It was the best day ever.",
    "Ben was a little boy who was afraid of the dark. Every night, his mom left a small light on in his room. One "
    "night, Ben saw the moon shine through the window. He was not scared anymore, and he fell asleep with a smile.",
]
LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def round_4bit(w, code, double_quant):
    packed, absmax = qr.quantize_4bit(w, 64, code)
    if double_quant:
        q, nested, offset, _ = qr.double_quantize(absmax)
        absmax = qr.dequantize_double(q, nested, offset)
    return qr.dequantize_4bit(packed, absmax, 64, code, w.numel()).reshape(w.shape)


def rounded(fmt, w):
    if fmt == "float32":
        return w
    if fmt == "int8":
        return qr.int8_rowwise(w)[2]
    code = {"nf4": qr.nf4_table()[0], "fp4": qr.fp4_table(), "int4": qr.int4_table()}[fmt]
    return round_4bit(w, code, double_quant=True)


def perplexity(model, sequences):
    nll, count = 0.0, 0
    with torch.no_grad():
        for ids in sequences:
            logits, _ = model(torch.tensor([ids]))
            logp = torch.log_softmax(logits[0].double(), dim=-1)
            targets = torch.tensor(ids[1:])
            nll -= logp[torch.arange(len(ids) - 1), targets].sum().item()
            count += len(ids) - 1
    return float(torch.exp(torch.tensor(nll / count, dtype=torch.float64)))


def main():
    deterministic(0)
    sp = tokenizer()
    sequences = [[BOS] + sp.encode(t) for t in TEXTS]
    result = {}
    for fmt in ("float32", "nf4", "fp4", "int4", "int8"):
        model, _ = load_stories260k()
        with torch.no_grad():
            for name, module in model.named_modules():
                if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in LINEAR:
                    module.weight.copy_(rounded(fmt, module.weight.detach().clone()))
        result[fmt] = perplexity(model, sequences)
        print(f"{fmt}: {result[fmt]:.6f}")
    write_json({"texts": TEXTS, "token_ids": sequences, "perplexity": result,
                "note": "4-bit formats: block 64 with double quantization; int8: row-wise absmax; head tied, not quantized"},
               fixture_path("quant", "perplexity_stories260k.json"))


if __name__ == "__main__":
    main()
