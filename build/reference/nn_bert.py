"""BERT and RoBERTa encoders in plain PyTorch, following Hugging Face transformers' modeling_bert.py /
modeling_roberta.py (post-LayerNorm blocks, eager attention, dropout off, absolute position embeddings).

Module and parameter names match HF, so `state_dict()` keys are HF checkpoint keys
("bert.encoder.layer.0.attention.self.query.weight", "roberta.embeddings.position_embeddings.weight", ...).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from nn_common import extended_attention_mask, num_labels




def roberta_position_ids(input_ids: torch.Tensor, padding_idx: int) -> torch.Tensor:
    """RoBERTa: real tokens count from padding_idx + 1, pad tokens get padding_idx (create_position_ids_from_input_ids)."""
    mask = input_ids.ne(padding_idx).int()
    return (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + padding_idx


class BertEmbeddings(nn.Module):
    """LayerNorm(word[ids] + position[pos] + token_type[types])."""

    def __init__(self, cfg: dict, roberta_positions: bool):
        super().__init__()
        h = cfg["hidden_size"]
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], h)
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], h)
        self.token_type_embeddings = nn.Embedding(cfg["type_vocab_size"], h)
        self.LayerNorm = nn.LayerNorm(h, eps=cfg["layer_norm_eps"])
        self.roberta_positions = roberta_positions
        self.pad_token_id = cfg["pad_token_id"]

    def position_ids(self, input_ids):
        if self.roberta_positions:
            return roberta_position_ids(input_ids, self.pad_token_id)
        return torch.arange(input_ids.shape[1])[None].expand_as(input_ids)

    def forward(self, input_ids, token_type_ids):
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(self.position_ids(input_ids))
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        h = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.head_dim = h // self.heads
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)

    def forward(self, x, ext_mask):
        b, s, h = x.shape

        def split(t):
            return t.view(b, s, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + ext_mask
        probs = F.softmax(scores, dim=-1)
        self.last_probs = probs.detach()  # kept for fixtures that publish intermediate values
        return torch.matmul(probs, v).transpose(1, 2).reshape(b, s, h)


class BertSelfOutput(nn.Module):
    """LayerNorm(dense(context) + residual)."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.dense = nn.Linear(cfg["hidden_size"], cfg["hidden_size"])
        self.LayerNorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg)

    def forward(self, x, ext_mask):
        return self.output(self.self(x, ext_mask), x)


class BertIntermediate(nn.Module):
    """gelu(dense(x)) with the exact erf GELU (HF "gelu")."""

    def __init__(self, cfg: dict):
        super().__init__()
        assert cfg["hidden_act"] == "gelu"
        self.dense = nn.Linear(cfg["hidden_size"], cfg["intermediate_size"])

    def forward(self, x):
        return F.gelu(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.dense = nn.Linear(cfg["intermediate_size"], cfg["hidden_size"])
        self.LayerNorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class BertLayer(nn.Module):
    """a = LN1(x + attn(x)); out = LN2(a + W2 gelu(W1 a))."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertOutput(cfg)

    def forward(self, x, ext_mask):
        a = self.attention(x, ext_mask)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg["num_hidden_layers"]))

    def forward(self, x, ext_mask):
        for layer in self.layer:
            x = layer(x, ext_mask)
        return x


class BertPooler(nn.Module):
    """tanh(dense(hidden[:, 0]))."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.dense = nn.Linear(cfg["hidden_size"], cfg["hidden_size"])

    def forward(self, hidden):
        return torch.tanh(self.dense(hidden[:, 0]))


class BertModel(nn.Module):
    """Returns (last_hidden_state, pooler_output or None)."""

    def __init__(self, cfg: dict, add_pooling_layer: bool, roberta_positions: bool = False):
        super().__init__()
        self.embeddings = BertEmbeddings(cfg, roberta_positions)
        self.encoder = BertEncoder(cfg)
        self.pooler = BertPooler(cfg) if add_pooling_layer else None

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.encoder(self.embeddings(input_ids, token_type_ids), extended_attention_mask(attention_mask))
        return hidden, (self.pooler(hidden) if self.pooler is not None else None)




class EncoderWithHead(nn.Module):
    """`<prefix>.*` backbone (prefix "bert" or "roberta") plus a head named like HF's.

    head "bert_sequence": classifier Linear on the pooler output (BertForSequenceClassification, with pooler);
    head "roberta_sequence": classifier.dense -> tanh -> classifier.out_proj on hidden[:, 0]
    (RobertaClassificationHead, no pooler); head "token": classifier Linear on every position (no pooler).
    """

    def __init__(self, cfg: dict, prefix: str, head: str):
        super().__init__()
        self.prefix, self.head = prefix, head
        model = BertModel(cfg, add_pooling_layer=(head == "bert_sequence"), roberta_positions=(prefix == "roberta"))
        self.add_module(prefix, model)
        h, n = cfg["hidden_size"], num_labels(cfg)
        if head == "roberta_sequence":
            self.classifier = nn.Module()
            self.classifier.dense = nn.Linear(h, h)
            self.classifier.out_proj = nn.Linear(h, n)
        else:
            self.classifier = nn.Linear(h, n)

    def forward(self, input_ids, attention_mask, token_type_ids):
        """Returns (logits, last_hidden_state, pooler_output or None)."""
        hidden, pooled = getattr(self, self.prefix)(input_ids, attention_mask, token_type_ids)
        if self.head == "bert_sequence":
            logits = self.classifier(pooled)
        elif self.head == "roberta_sequence":
            logits = self.classifier.out_proj(torch.tanh(self.classifier.dense(hidden[:, 0])))
        else:
            logits = self.classifier(hidden)
        return logits, hidden, pooled
