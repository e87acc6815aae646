"""Reference values for the soft-prompt methods (src/Microsoft.ML.Peft/PromptTuning, PrefixTuning, AdaptionPrompt).

On the tiny random Llama (GQA: 4 query heads, 2 key/value heads, llama3 RoPE) and BERT checkpoints of
Fixtures/reference/models, computes in plain PyTorch (nn_llama.py / nn_bert.py weights, the attention written out
here) what Hugging Face transformers + PEFT compute for:
  * prefix tuning: PEFT's past_key_values table [n, 2L * kv_heads * head_dim] viewed as [n, 2L, kv_heads, head_dim]
    and permuted to [2L, kv_heads, n, head_dim] (layer l: keys 2l, values 2l+1), put in front of every layer's keys
    and values (keys not rotated), attention mask extended with ones, and the real tokens' positions starting at n
    (Llama: cache_position; BERT: past_key_values_length);
  * prompt tuning: n virtual token embeddings in front of the word embeddings (positions 0..n-1, token type 0,
    mask extended with ones);
  * LLaMA-Adapter (adaption prompt, PEFT's AdaptedAttention) in the top layer with a non-zero gate;
  * P-tuning's prompt encoders (PEFT's PromptEncoder: MLP, and bidirectional 2-layer LSTM + MLP) on random weights,
    saved under PEFT's parameter names with the table they compute.
Writes Fixtures/reference/prompts/expected.safetensors. Run with /usr/bin/python3 (PyTorch 1.13).
"""
import math

import torch
import torch.nn.functional as F

from nn_bert import EncoderWithHead
from nn_common import apply_rope, causal_padding_mask, extended_attention_mask, rope_cos_sin
from nn_llama import LlamaModel
from ref_common import MASK_MIN, deterministic, fixture_path
from safetensors_io import load_file, save_file
import json

N_PREFIX = 3
ADAPTER_LEN = 2


def load_config(arch):
    with open(fixture_path("models", arch, "config.json")) as f:
        return json.load(f)


def llama_forward(model, cfg, ids, mask, prefix=None, prompt=None, adaption=None):
    """Last hidden state [b, s(+n), h] of the Llama backbone with the given soft-prompt method."""
    b, s = ids.shape
    x = model.embed_tokens(ids)
    past = 0
    if prompt is not None:
        n = prompt.shape[0]
        x = torch.cat([prompt[None].expand(b, n, -1), x], 1)
        mask = torch.cat([torch.ones(b, n, dtype=mask.dtype), mask], 1)
        s += n
    if prefix is not None:
        past = prefix.shape[0]
    positions = (past + torch.arange(s))[None].expand(b, s)
    cos, sin = rope_cos_sin(model.inv_freq, positions)
    block = causal_padding_mask(mask)
    if past:
        block = torch.cat([torch.zeros(b, 1, s, past), block], -1)
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg["head_dim"]
    layers = len(model.layers)
    if prefix is not None:
        pkv = prefix.view(1, past, 2 * layers, kv, hd).permute(2, 0, 3, 1, 4)  # [2L, 1, kv, n, hd]
    for li, layer in enumerate(model.layers):
        attn = layer.self_attn
        h_in = layer.input_layernorm(x)
        q = attn.q_proj(h_in).view(b, s, heads, hd).transpose(1, 2)
        k = attn.k_proj(h_in).view(b, s, kv, hd).transpose(1, 2)
        v = attn.v_proj(h_in).view(b, s, kv, hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if prefix is not None:
            k = torch.cat([pkv[2 * li].expand(b, kv, past, hd), k], 2)
            v = torch.cat([pkv[2 * li + 1].expand(b, kv, past, hd), v], 2)
        rep = heads // kv
        kr, vr = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        probs = F.softmax(torch.matmul(q, kr.transpose(2, 3)) / math.sqrt(hd) + block, dim=-1)
        out = attn.o_proj(torch.matmul(probs, vr).transpose(1, 2).reshape(b, s, heads * hd))
        if adaption is not None and li >= layers - len(adaption):
            a_prompt, gate = adaption[li - (layers - len(adaption))]
            alen = a_prompt.shape[1]
            ak = attn.k_proj(a_prompt).view(1, alen, kv, hd).repeat(b, 1, 1, 1).transpose(1, 2).repeat_interleave(rep, 1)
            av = attn.v_proj(a_prompt).view(1, alen, kv, hd).repeat(b, 1, 1, 1).transpose(1, 2).repeat_interleave(rep, 1)
            scores = gate * F.softmax(torch.matmul(q, ak.transpose(2, 3)) / math.sqrt(hd), dim=-1, dtype=torch.float32)
            out = out + attn.o_proj(torch.matmul(scores, av).transpose(1, 2).reshape(b, s, heads * hd))
        hmid = x + out
        x = hmid + layer.mlp(layer.post_attention_layernorm(hmid))
    return model.norm(x)


def bert_forward(model, cfg, ids, mask, prefix=None, prompt=None):
    """(last hidden state, classifier logits) of BertForSequenceClassification with the given soft-prompt method."""
    bert = model.bert
    b, s = ids.shape
    words = bert.embeddings.word_embeddings(ids)
    past = 0
    if prompt is not None:
        n = prompt.shape[0]
        words = torch.cat([prompt[None].expand(b, n, -1), words], 1)
        mask = torch.cat([torch.ones(b, n, dtype=mask.dtype), mask], 1)
        s += n
    if prefix is not None:
        past = prefix.shape[0]
        mask = torch.cat([torch.ones(b, past, dtype=mask.dtype), mask], 1)
    positions = (past + torch.arange(s))[None].expand(b, s)
    x = words + bert.embeddings.token_type_embeddings(torch.zeros(b, s, dtype=torch.long))
    x = bert.embeddings.LayerNorm(x + bert.embeddings.position_embeddings(positions))
    ext = extended_attention_mask(mask)
    heads = cfg["num_attention_heads"]
    hd = cfg["hidden_size"] // heads
    layers = bert.encoder.layer
    if prefix is not None:
        pkv = prefix.view(1, past, 2 * len(layers), heads, hd).permute(2, 0, 3, 1, 4)
    for li, layer in enumerate(layers):
        sa = layer.attention.self

        def split(t):
            return t.view(b, s, heads, hd).transpose(1, 2)

        q, k, v = split(sa.query(x)), split(sa.key(x)), split(sa.value(x))
        if prefix is not None:
            k = torch.cat([pkv[2 * li].expand(b, heads, past, hd), k], 2)
            v = torch.cat([pkv[2 * li + 1].expand(b, heads, past, hd), v], 2)
        probs = F.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd) + ext, dim=-1)
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, heads * hd)
        a = layer.attention.output(ctx, x)
        x = layer.output(layer.intermediate(a), a)
    logits = model.classifier(bert.pooler(x))
    return x, logits


def main():
    deterministic(1234)
    gen = torch.Generator().manual_seed(1234)
    out = {}
    ids = torch.tensor([[5, 17, 42, 9, 33], [7, 21, 11, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    out["input_ids"] = ids
    out["attention_mask"] = mask

    cfg = load_config("llama_gqa")
    llama = LlamaModel(cfg)
    state = load_file(fixture_path("models", "llama_gqa", "model.safetensors"))
    llama.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
    llama.eval()
    layers, kv, hd, hidden = cfg["num_hidden_layers"], cfg["num_key_value_heads"], cfg["head_dim"], cfg["hidden_size"]
    with torch.no_grad():
        prefix = torch.randn(N_PREFIX, 2 * layers * kv * hd, generator=gen)
        prompt = torch.randn(N_PREFIX, hidden, generator=gen)
        a_prompt = torch.randn(1, ADAPTER_LEN, hidden, generator=gen)
        gate = torch.tensor([0.7])
        out["llama.prefix_table"] = prefix
        out["llama.prompt"] = prompt
        out["llama.adaption_prompt"] = a_prompt
        out["llama.adaption_gate"] = gate
        out["llama.prefix.last_hidden_state"] = llama_forward(llama, cfg, ids, mask, prefix=prefix)
        out["llama.prompt.last_hidden_state"] = llama_forward(llama, cfg, ids, mask, prompt=prompt)
        out["llama.adaption.last_hidden_state"] = llama_forward(llama, cfg, ids, mask, adaption=[(a_prompt, gate)])

    cfg = load_config("bert")
    bert = EncoderWithHead(cfg, "bert", "bert_sequence")
    bert.load_state_dict(load_file(fixture_path("models", "bert", "model.safetensors")))
    bert.eval()
    layers, hidden = cfg["num_hidden_layers"], cfg["hidden_size"]
    with torch.no_grad():
        prefix = torch.randn(N_PREFIX, 2 * layers * hidden, generator=gen)
        prompt = torch.randn(N_PREFIX, hidden, generator=gen)
        out["bert.prefix_table"] = prefix
        out["bert.prompt"] = prompt
        out["bert.prefix.last_hidden_state"], out["bert.prefix.logits"] = bert_forward(bert, cfg, ids, mask, prefix=prefix)
        out["bert.prompt.last_hidden_state"], out["bert.prompt.logits"] = bert_forward(bert, cfg, ids, mask, prompt=prompt)

    with torch.no_grad():
        for kind in ("mlp", "lstm"):
            td, h, n = 6, 5, 4
            emb = torch.nn.Embedding(n, td)
            if kind == "lstm":
                lstm = torch.nn.LSTM(input_size=td, hidden_size=h, num_layers=2, bidirectional=True, batch_first=True)
                mlp = torch.nn.Sequential(torch.nn.Linear(2 * h, 2 * h), torch.nn.ReLU(), torch.nn.Linear(2 * h, td))
                table = mlp(lstm(emb.weight[None])[0])[0]
                modules = {"embedding": emb, "lstm_head": lstm, "mlp_head": mlp}
            else:
                mlp = torch.nn.Sequential(torch.nn.Linear(td, h), torch.nn.ReLU(), torch.nn.Linear(h, h), torch.nn.ReLU(),
                                          torch.nn.Linear(h, td))
                table = mlp(emb.weight)
                modules = {"embedding": emb, "mlp_head": mlp}
            for name, module in modules.items():
                for key, value in module.state_dict().items():
                    out[f"ptuning_{kind}.{name}.{key}"] = value
            out[f"ptuning_{kind}.table"] = table

    save_file({k: v.contiguous() for k, v in out.items()}, fixture_path("prompts", "expected.safetensors"))
    print("wrote", fixture_path("prompts", "expected.safetensors"), len(out), "tensors")


if __name__ == "__main__":
    main()
