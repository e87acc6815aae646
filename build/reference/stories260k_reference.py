"""Reference outputs of the real pretrained stories260K Llama (../shared/models/stories260K) computed with the plain
PyTorch Llama in nn_llama.py: full logits for three prompts, a 200-token greedy continuation, and the mean NLL of the
story sentence from the models README. Checks the README's published test vectors first.

Run:  /usr/bin/python3 build/reference/stories260k_reference.py
Writes test/Microsoft.ML.Peft.Tests/Fixtures/reference/stories260k/stories260k.{safetensors,json}
"""
import json
import os

import sentencepiece as spm
import torch
import torch.nn.functional as F

from nn_llama import LlamaWithHead
from ref_common import SHARED, deterministic, describe, fixture_path, write_json
from safetensors_io import load_file, save_file

MODEL_DIR = os.path.join(SHARED, "models", "stories260K")
PROMPTS = ["Once upon a time", "The cat sat on the mat.", "Lily and Ben went to the park to play with a red ball."]
NLL_TEXT = ("Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
            "One day, she saw a big, red ball.")
NEW_TOKENS = 200
BOS, EOS = 1, 2


def load_stories260k():
    """Builds the model from config.json + model.safetensors (tied embeddings: no lm_head tensor in the file)."""
    with open(os.path.join(MODEL_DIR, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    model = LlamaWithHead(cfg, "causal_lm")
    state = load_file(os.path.join(MODEL_DIR, "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"stories260K state dict mismatch: missing {missing}, unexpected {unexpected}")
    return model.eval(), cfg


def tokenizer():
    return spm.SentencePieceProcessor(model_file=os.path.join(MODEL_DIR, "tokenizer.model"))


def check_readme_vectors(model, sp):
    """Asserts the numbers published in ../shared/models/README.md."""
    assert sp.encode("Once upon a time, there was a little girl named Lily.") == [
        403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426]
    assert sp.encode("Hello world!") == [346, 306, 414, 263, 304, 341, 443]
    logits = model(torch.tensor([[BOS]]))[0][0, 0]
    top = torch.topk(logits, 5)
    expected = [(403, 17.0235), (385, 15.4062), (410, 13.1083), (317, 12.7692), (407, 12.4181)]
    for (tid, val), i, v in zip(expected, top.indices.tolist(), top.values.tolist()):
        assert i == tid and abs(v - val) < 1e-4, (i, v, tid, val)
    return [[i, v] for i, v in zip(top.indices.tolist(), top.values.tolist())]


@torch.no_grad()
def greedy(model, ids, new_tokens):
    """Greedy decoding by full recomputation (no cache); stops early only at EOS, as HF generate would.
    Also returns, per step, the gap between the best and second-best logit (how robust each choice is to round-off)."""
    ids = list(ids)
    out, margins = [], []
    for _ in range(new_tokens):
        last = model(torch.tensor([ids]))[0][0, -1]
        top2 = torch.topk(last, 2).values
        margins.append(float(top2[0] - top2[1]))
        nxt = int(last.argmax())
        out.append(nxt)
        ids.append(nxt)
        if nxt == EOS:
            break
    return out, margins


def main():
    deterministic(seed=2000, threads=1)
    model, cfg = load_stories260k()
    sp = tokenizer()
    top5 = check_readme_vectors(model, sp)
    tensors, prompts = {}, []
    with torch.no_grad():
        for i, text in enumerate(PROMPTS):
            ids = torch.tensor([BOS] + sp.encode(text))
            tensors[f"prompt{i}.input_ids"] = ids
            tensors[f"prompt{i}.logits"] = model(ids[None])[0][0]
            prompts.append({"name": f"prompt{i}", "text": text, "ids": ids.tolist()})

        gen_prompt = [BOS] + sp.encode(PROMPTS[0])
        generated, margins = greedy(model, gen_prompt, NEW_TOKENS)
        tensors["greedy.input_ids"] = torch.tensor(gen_prompt)
        tensors["greedy.generated_ids"] = torch.tensor(generated)

        nll_ids = torch.tensor([BOS] + sp.encode(NLL_TEXT))
        logits = model(nll_ids[None])[0][0]
        token_nll = F.cross_entropy(logits[:-1], nll_ids[1:], reduction="none")
        mean_nll = token_nll.mean()
        assert token_nll.numel() == 44 and abs(float(mean_nll) - 0.324) < 5e-4, (token_nll.numel(), float(mean_nll))
        tensors["nll.input_ids"] = nll_ids
        tensors["nll.token_nll"] = token_nll
        tensors["nll.mean"] = mean_nll.reshape(1)

    path = fixture_path("stories260k", "stories260k.safetensors")
    save_file(tensors, path)
    notes = {
        "prompt": "", "greedy.input_ids": "BOS + encode(\"Once upon a time\") (int64)",
        "greedy.generated_ids": f"{len(generated)} greedily generated token ids after the prompt (int64)",
        "nll.input_ids": "BOS + encode(nll text) (int64)",
        "nll.token_nll": "-log p(id[t+1] | ids[0..t]) for t = 0..43 (natural log)",
        "nll.mean": "mean of nll.token_nll, shape [1]",
    }
    for i in range(len(PROMPTS)):
        notes[f"prompt{i}.input_ids"] = f"BOS + sentencepiece ids of {PROMPTS[i]!r} (int64)"
        notes[f"prompt{i}.logits"] = "[tokens, 512] next-token logits at every position (batch of one, no padding)"
    write_json({
        "script": "build/reference/stories260k_reference.py",
        "torch": torch.__version__,
        "model": "../shared/models/stories260K (model.safetensors + config.json; tied embeddings)",
        "tokenizer": "sentencepiece tokenizer.model, BOS (1) prepended, no EOS",
        "forward": "HF LlamaForCausalLM semantics: rotate-half RoPE theta 10000, positions 0..T-1, 8 query / 4 KV heads, "
                   "RMSNorm eps 1e-5, logits = final_norm(h) @ embed_tokens.weight^T",
        "config": cfg,
        "readme_checks": {
            "top5_logits_at_position0_for_BOS": top5,
            "encodings": "Once upon a time, there was a little girl named Lily. / Hello world! match the README",
        },
        "prompts": prompts,
        "greedy": {
            "prompt": PROMPTS[0], "prompt_ids": gen_prompt, "max_new_tokens": NEW_TOKENS,
            "stopped_at_eos": bool(generated and generated[-1] == EOS),
            "generated_ids": generated,
            "smallest_top1_top2_logit_gap": min(margins),
            "step_of_smallest_gap": margins.index(min(margins)), "decoded_generation": sp.decode(generated),
            "decoded_prompt_and_generation": sp.decode(gen_prompt[1:] + generated),
        },
        "nll": {"text": NLL_TEXT, "tokens_scored": int(token_nll.numel()),
                "mean_nats_per_token": float(mean_nll)},
        "tensors": describe(tensors, notes),
    }, path[:-len(".safetensors")] + ".json")
    print(f"stories260K: mean NLL {float(mean_nll):.6f} over {token_nll.numel()} tokens; "
          f"generated {len(generated)} tokens")


if __name__ == "__main__":
    main()
