"""GPT-2 in plain PyTorch, following Hugging Face transformers' modeling_gpt2.py (pre-LayerNorm blocks, learned
absolute positions, Conv1D projections whose weights are stored [in, out], tanh GELU, eager attention, dropout off).
`state_dict()` keys are HF keys ("transformer.h.0.attn.c_attn.weight", "score.weight", ...); the LM head is tied to
transformer.wte and therefore has no tensor of its own.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from nn_common import causal_padding_mask, last_non_pad_index, num_labels


class Conv1D(nn.Module):
    """y = x @ weight + bias with weight [in, out] (the transpose of nn.Linear's layout)."""

    def __init__(self, n_out: int, n_in: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


def gelu_new(x):
    """HF NewGELUActivation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2Attention(nn.Module):
    """c_attn output [q | k | v] (each n_embd wide, head h = columns h*d..h*d+d-1 of each); scores / sqrt(d)."""

    def __init__(self, cfg: dict):
        super().__init__()
        e = cfg["n_embd"]
        self.heads = cfg["n_head"]
        self.head_dim = e // self.heads
        self.c_attn = Conv1D(3 * e, e)
        self.c_proj = Conv1D(e, e)

    def forward(self, x, mask):
        b, s, e = x.shape
        q, k, v = self.c_attn(x).split(e, dim=2)

        def split(t):
            return t.view(b, s, self.heads, self.head_dim).permute(0, 2, 1, 3)

        q, k, v = split(q), split(k), split(v)
        scores = torch.matmul(q, k.transpose(-1, -2)) / torch.full([], v.size(-1) ** 0.5) + mask
        probs = F.softmax(scores, dim=-1)
        return self.c_proj(torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(b, s, e))


class GPT2MLP(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        assert cfg["activation_function"] == "gelu_new"
        inner = cfg.get("n_inner") or 4 * cfg["n_embd"]
        self.c_fc = Conv1D(inner, cfg["n_embd"])
        self.c_proj = Conv1D(cfg["n_embd"], inner)

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class GPT2Block(nn.Module):
    """h = x + attn(ln_1(x)); out = h + mlp(ln_2(h))."""

    def __init__(self, cfg: dict):
        super().__init__()
        eps = cfg["layer_norm_epsilon"]
        self.ln_1 = nn.LayerNorm(cfg["n_embd"], eps=eps)
        self.attn = GPT2Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg["n_embd"], eps=eps)
        self.mlp = GPT2MLP(cfg)

    def forward(self, x, mask):
        h = x + self.attn(self.ln_1(x), mask)
        return h + self.mlp(self.ln_2(h))


class GPT2Model(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.wte = nn.Embedding(cfg["vocab_size"], cfg["n_embd"])
        self.wpe = nn.Embedding(cfg["n_positions"], cfg["n_embd"])
        self.h = nn.ModuleList(GPT2Block(cfg) for _ in range(cfg["n_layer"]))
        self.ln_f = nn.LayerNorm(cfg["n_embd"], eps=cfg["layer_norm_epsilon"])

    def forward(self, input_ids, attention_mask, position_ids=None):
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1])[None].expand_as(input_ids)
        x = self.wte(input_ids) + self.wpe(position_ids)
        mask = causal_padding_mask(attention_mask)
        for block in self.h:
            x = block(x, mask)
        return self.ln_f(x)


class GPT2WithHead(nn.Module):
    """head "causal_lm": logits = hidden @ wte^T (GPT2LMHeadModel, tied); head "sequence": score (no bias) at the last
    non-pad token (GPT2ForSequenceClassification). forward returns (logits, last_hidden_state)."""

    def __init__(self, cfg: dict, head: str):
        super().__init__()
        self.cfg, self.head = cfg, head
        self.transformer = GPT2Model(cfg)
        if head == "sequence":
            self.score = nn.Linear(cfg["n_embd"], num_labels(cfg), bias=False)

    def forward(self, input_ids, attention_mask, position_ids=None):
        hidden = self.transformer(input_ids, attention_mask, position_ids)
        if self.head == "causal_lm":
            return F.linear(hidden, self.transformer.wte.weight), hidden
        idx = last_non_pad_index(input_ids, self.cfg["pad_token_id"])
        return self.score(hidden[torch.arange(hidden.shape[0]), idx]), hidden
