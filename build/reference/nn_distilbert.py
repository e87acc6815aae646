"""DistilBERT encoder in plain PyTorch, following Hugging Face transformers' modeling_distilbert.py (learned absolute
positions, post-LayerNorm blocks with eps 1e-12, eager attention, dropout off). `state_dict()` keys are HF keys
("distilbert.transformer.layer.0.attention.q_lin.weight", "pre_classifier.weight", "classifier.weight", ...).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from nn_common import num_labels
from ref_common import MASK_MIN


class Embeddings(nn.Module):
    """LayerNorm(word[ids] + position[0..s-1]); no token types."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], cfg["dim"])
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], cfg["dim"])
        self.LayerNorm = nn.LayerNorm(cfg["dim"], eps=1e-12)

    def forward(self, input_ids):
        pos = torch.arange(input_ids.shape[1])[None]
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(pos))


class MultiHeadSelfAttention(nn.Module):
    """q is divided by sqrt(head_dim) before q k^T; padding keys are overwritten (masked_fill) with float32 min."""

    def __init__(self, cfg: dict):
        super().__init__()
        d = cfg["dim"]
        self.heads = cfg["n_heads"]
        self.head_dim = d // self.heads
        self.q_lin, self.k_lin, self.v_lin, self.out_lin = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, attention_mask):
        b, s, d = x.shape

        def split(t):
            return t.view(b, s, self.heads, self.head_dim).transpose(1, 2)

        q = split(self.q_lin(x)) / math.sqrt(self.head_dim)
        k, v = split(self.k_lin(x)), split(self.v_lin(x))
        scores = torch.matmul(q, k.transpose(2, 3))
        pad = (attention_mask == 0).view(b, 1, 1, s).expand_as(scores)
        scores = scores.masked_fill(pad, MASK_MIN)
        probs = F.softmax(scores, dim=-1)
        return self.out_lin(torch.matmul(probs, v).transpose(1, 2).reshape(b, s, d))


class FFN(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        assert cfg["activation"] == "gelu"
        self.lin1 = nn.Linear(cfg["dim"], cfg["hidden_dim"])
        self.lin2 = nn.Linear(cfg["hidden_dim"], cfg["dim"])

    def forward(self, x):
        return self.lin2(F.gelu(self.lin1(x)))


class TransformerBlock(nn.Module):
    """a = sa_layer_norm(attn(x) + x); out = output_layer_norm(ffn(a) + a)."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.attention = MultiHeadSelfAttention(cfg)
        self.sa_layer_norm = nn.LayerNorm(cfg["dim"], eps=1e-12)
        self.ffn = FFN(cfg)
        self.output_layer_norm = nn.LayerNorm(cfg["dim"], eps=1e-12)

    def forward(self, x, attention_mask):
        a = self.sa_layer_norm(self.attention(x, attention_mask) + x)
        return self.output_layer_norm(self.ffn(a) + a)


class Transformer(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.layer = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg["n_layers"]))

    def forward(self, x, attention_mask):
        for layer in self.layer:
            x = layer(x, attention_mask)
        return x


class DistilBertModel(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.embeddings = Embeddings(cfg)
        self.transformer = Transformer(cfg)

    def forward(self, input_ids, attention_mask):
        return self.transformer(self.embeddings(input_ids), attention_mask)


class DistilBertWithHead(nn.Module):
    """head "sequence": classifier(relu(pre_classifier(hidden[:, 0]))) (DistilBertForSequenceClassification);
    head "token": classifier(hidden) at every position (DistilBertForTokenClassification)."""

    def __init__(self, cfg: dict, head: str):
        super().__init__()
        self.head = head
        self.distilbert = DistilBertModel(cfg)
        if head == "sequence":
            self.pre_classifier = nn.Linear(cfg["dim"], cfg["dim"])
        self.classifier = nn.Linear(cfg["dim"], num_labels(cfg))

    def forward(self, input_ids, attention_mask):
        """Returns (logits, last_hidden_state)."""
        hidden = self.distilbert(input_ids, attention_mask)
        if self.head == "sequence":
            return self.classifier(F.relu(self.pre_classifier(hidden[:, 0]))), hidden
        return self.classifier(hidden), hidden
