"""Llama-family decoder (Llama, Llama 3 RoPE scaling, Qwen2 q/k/v bias) in plain PyTorch, following the semantics of
Hugging Face transformers' modeling_llama.py / modeling_qwen2.py (eager attention, no KV cache, dropout off).

Module and parameter names match HF exactly, so `state_dict()` keys are the HF checkpoint keys
("model.layers.0.self_attn.q_proj.weight", "lm_head.weight", "score.weight", ...).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from nn_common import (apply_rope, causal_padding_mask, default_inv_freq, last_non_pad_index, num_labels,
                       rope_cos_sin)


class LlamaRMSNorm(nn.Module):
    """y = weight * x / sqrt(mean(x^2) + eps) over the last axis (computed in float32, as HF does)."""

    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden))
        self.variance_epsilon = eps

    def forward(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.variance_epsilon))


def rope_inv_freq(head_dim: int, theta: float, rope_scaling) -> torch.Tensor:
    """inv_freq[i] = 1 / theta^(2i/d), then the HF rope_scaling rule ("linear" or "llama3"; None = default)."""
    inv_freq = default_inv_freq(head_dim, theta)
    if not rope_scaling:
        return inv_freq
    kind = rope_scaling.get("rope_type", rope_scaling.get("type"))
    factor = float(rope_scaling["factor"])
    if kind == "linear":
        return inv_freq / factor
    if kind == "llama3":
        # HF _compute_llama3_parameters: long wavelengths are slowed by `factor`, short ones kept, the band between
        # them interpolated smoothly.
        low_ff = rope_scaling["low_freq_factor"]
        high_ff = rope_scaling["high_freq_factor"]
        old_len = rope_scaling["original_max_position_embeddings"]
        low_freq_wavelen = old_len / low_ff
        high_freq_wavelen = old_len / high_ff
        wavelen = 2 * math.pi / inv_freq
        inv_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low_ff) / (high_ff - low_ff)
        smoothed = (1 - smooth) * inv_llama / factor + smooth * inv_llama
        is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        return torch.where(is_medium, smoothed, inv_llama)
    raise ValueError(f"unsupported rope_scaling {rope_scaling}")










class LlamaAttention(nn.Module):
    """Grouped-query attention: query head h uses key/value head h // (heads / kv_heads)."""

    def __init__(self, cfg: dict, qkv_bias: bool, o_bias: bool):
        super().__init__()
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads") or self.heads
        self.head_dim = cfg.get("head_dim") or cfg["hidden_size"] // self.heads
        h = cfg["hidden_size"]
        self.q_proj = nn.Linear(h, self.heads * self.head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(self.heads * self.head_dim, h, bias=o_bias)

    def forward(self, x, cos, sin, mask):
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        rep = self.heads // self.kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) * self.head_dim ** -0.5 + mask
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        self.last_probs = probs.detach()  # kept for fixtures that publish intermediate values
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, self.heads * self.head_dim)
        return self.o_proj(ctx)


class LlamaMLP(nn.Module):
    """down_proj(silu(gate_proj(x)) * up_proj(x))."""

    def __init__(self, cfg: dict, bias: bool = False):
        super().__init__()
        h, i = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(h, i, bias=bias)
        self.up_proj = nn.Linear(h, i, bias=bias)
        self.down_proj = nn.Linear(i, h, bias=bias)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    """Pre-norm block: h = x + attn(rms(x)); out = h + mlp(rms(h))."""

    def __init__(self, cfg: dict, qkv_bias: bool = False, o_bias: bool = False):
        super().__init__()
        eps = cfg["rms_norm_eps"]
        self.input_layernorm = LlamaRMSNorm(cfg["hidden_size"], eps)
        self.self_attn = LlamaAttention(cfg, qkv_bias, o_bias)
        self.post_attention_layernorm = LlamaRMSNorm(cfg["hidden_size"], eps)
        self.mlp = LlamaMLP(cfg, bias=bool(cfg.get("mlp_bias", False)))

    def forward(self, x, cos, sin, mask):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return h + self.mlp(self.post_attention_layernorm(h))


class LlamaModel(nn.Module):
    """Embedding -> decoder layers -> final RMSNorm. `qkv_bias` is Qwen2's q/k/v bias."""

    def __init__(self, cfg: dict, qkv_bias: bool = False):
        super().__init__()
        self.cfg = cfg
        o_bias = bool(cfg.get("attention_bias", False)) and not qkv_bias
        if cfg.get("attention_bias", False):
            qkv_bias = True
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList(LlamaDecoderLayer(cfg, qkv_bias, o_bias) for _ in range(cfg["num_hidden_layers"]))
        self.norm = LlamaRMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        self.register_buffer("inv_freq", rope_inv_freq(head_dim, cfg.get("rope_theta", 10000.0),
                                                        cfg.get("rope_scaling")), persistent=False)

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        b, s = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones(b, s)
        if position_ids is None:
            # HF's forward (outside generate) uses 0..s-1 for every row, padded or not.
            position_ids = torch.arange(s)[None].expand(b, s)
        cos, sin = rope_cos_sin(self.inv_freq, position_ids)
        mask = causal_padding_mask(attention_mask)
        x = self.embed_tokens(input_ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.norm(x)






class LlamaWithHead(nn.Module):
    """`model.*` backbone plus a head named like HF's. forward returns (logits, last_hidden_state).

    head "causal_lm": logits at every position from lm_head, or from embed_tokens when tie_word_embeddings
    (LlamaForCausalLM / Qwen2ForCausalLM); head "sequence": score (no bias) on the hidden state of the last non-pad
    token (LlamaForSequenceClassification), or of `pool_index` when given.
    """

    def __init__(self, cfg: dict, head: str, qkv_bias: bool = False):
        super().__init__()
        self.cfg, self.head = cfg, head
        self.model = LlamaModel(cfg, qkv_bias)
        self.tied = bool(cfg.get("tie_word_embeddings", False))
        if head == "causal_lm" and not self.tied:
            self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        if head == "sequence":
            self.score = nn.Linear(cfg["hidden_size"], num_labels(cfg), bias=False)

    def forward(self, input_ids, attention_mask=None, position_ids=None, pool_index=None):
        hidden = self.model(input_ids, attention_mask, position_ids)
        if self.head == "causal_lm":
            weight = self.model.embed_tokens.weight if self.tied else self.lm_head.weight
            return F.linear(hidden, weight), hidden
        if pool_index is None:
            pool_index = last_non_pad_index(input_ids, self.cfg["pad_token_id"])
        return self.score(hidden[torch.arange(hidden.shape[0]), pool_index]), hidden
