"""GPT-NeoX (Pythia) in plain PyTorch, following Hugging Face transformers' modeling_gpt_neox.py: fused
query_key_value with the per-head interleaved layout, partial rotary embedding (first rotary_pct of each head),
parallel residual, untied embed_out, eager attention, dropout off. `state_dict()` keys are HF keys
("gpt_neox.layers.0.attention.query_key_value.weight", "embed_out.weight", "score.weight", ...).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from nn_common import (apply_rope, causal_padding_mask, default_inv_freq, last_non_pad_index, num_labels,
                       rope_cos_sin)


class GPTNeoXAttention(nn.Module):
    """query_key_value output viewed as [b, s, heads, 3 * head_size]: per head [q | k | v] (interleaved by head).
    RoPE (rotate-half) on the first rotary_ndims features of each q/k head; the rest pass through."""

    def __init__(self, cfg: dict):
        super().__init__()
        h = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.head_size = h // self.heads
        self.rotary_ndims = int(self.head_size * cfg["rotary_pct"])
        bias = cfg.get("attention_bias", True)
        self.query_key_value = nn.Linear(h, 3 * h, bias=bias)
        self.dense = nn.Linear(h, h, bias=bias)

    def forward(self, x, cos, sin, mask):
        b, s, h = x.shape
        qkv = self.query_key_value(x).view(b, s, self.heads, 3 * self.head_size)
        q = qkv[..., :self.head_size].permute(0, 2, 1, 3)
        k = qkv[..., self.head_size:2 * self.head_size].permute(0, 2, 1, 3)
        v = qkv[..., 2 * self.head_size:].permute(0, 2, 1, 3)
        r = self.rotary_ndims
        q = torch.cat((apply_rope(q[..., :r], cos, sin), q[..., r:]), dim=-1)
        k = torch.cat((apply_rope(k[..., :r], cos, sin), k[..., r:]), dim=-1)
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_size)) + mask
        probs = F.softmax(scores, dim=-1)
        return self.dense(torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(b, s, h))


class GPTNeoXMLP(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        assert cfg["hidden_act"] == "gelu"
        self.dense_h_to_4h = nn.Linear(cfg["hidden_size"], cfg["intermediate_size"])
        self.dense_4h_to_h = nn.Linear(cfg["intermediate_size"], cfg["hidden_size"])

    def forward(self, x):
        return self.dense_4h_to_h(F.gelu(self.dense_h_to_4h(x)))


class GPTNeoXLayer(nn.Module):
    """Parallel residual: out = x + attn(ln_in(x)) + mlp(ln_post(x)); sequential: h = x + attn(ln_in(x)),
    out = h + mlp(ln_post(h))."""

    def __init__(self, cfg: dict):
        super().__init__()
        eps = cfg["layer_norm_eps"]
        self.use_parallel_residual = cfg["use_parallel_residual"]
        self.input_layernorm = nn.LayerNorm(cfg["hidden_size"], eps=eps)
        self.post_attention_layernorm = nn.LayerNorm(cfg["hidden_size"], eps=eps)
        self.attention = GPTNeoXAttention(cfg)
        self.mlp = GPTNeoXMLP(cfg)

    def forward(self, x, cos, sin, mask):
        attn = self.attention(self.input_layernorm(x), cos, sin, mask)
        if self.use_parallel_residual:
            return self.mlp(self.post_attention_layernorm(x)) + attn + x
        h = attn + x
        return self.mlp(self.post_attention_layernorm(h)) + h


class GPTNeoXModel(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.embed_in = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList(GPTNeoXLayer(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.final_layer_norm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])
        rotary_ndims = int(cfg["hidden_size"] // cfg["num_attention_heads"] * cfg["rotary_pct"])
        self.register_buffer("inv_freq", default_inv_freq(rotary_ndims, float(cfg["rotary_emb_base"])),
                             persistent=False)

    def forward(self, input_ids, attention_mask, position_ids=None):
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1])[None].expand_as(input_ids)
        cos, sin = rope_cos_sin(self.inv_freq, position_ids)
        mask = causal_padding_mask(attention_mask)
        x = self.embed_in(input_ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.final_layer_norm(x)


class GPTNeoXWithHead(nn.Module):
    """head "causal_lm": embed_out (GPTNeoXForCausalLM); head "sequence": score (no bias) at the last non-pad token
    (GPTNeoXForSequenceClassification). forward returns (logits, last_hidden_state)."""

    def __init__(self, cfg: dict, head: str):
        super().__init__()
        self.cfg, self.head = cfg, head
        self.gpt_neox = GPTNeoXModel(cfg)
        if head == "causal_lm":
            self.embed_out = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        else:
            self.score = nn.Linear(cfg["hidden_size"], num_labels(cfg), bias=False)

    def forward(self, input_ids, attention_mask, position_ids=None):
        hidden = self.gpt_neox(input_ids, attention_mask, position_ids)
        if self.head == "causal_lm":
            return self.embed_out(hidden), hidden
        idx = last_non_pad_index(input_ids, self.cfg["pad_token_id"])
        return self.score(hidden[torch.arange(hidden.shape[0]), idx]), hidden
