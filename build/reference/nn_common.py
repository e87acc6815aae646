"""Pieces shared by the plain-PyTorch model files: attention masks, RoPE helpers, classification pooling."""
import torch

from ref_common import MASK_MIN


def extended_attention_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Encoder mask: [b, s] 1/0 -> additive [b, 1, 1, s], 0 for real keys and float32 min for padding keys
    (HF get_extended_attention_mask)."""
    return (1.0 - attention_mask[:, None, None, :].float()) * MASK_MIN


def causal_padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Decoder mask: additive [b, 1, s, s], 0 where key j <= query i and attention_mask[j] == 1, else float32 min.

    A query whose every key is masked (a left-padding position) gets a row of equal values, so softmax spreads
    uniformly over all keys there: that output is meaningless and callers must not compare it.
    """
    s = attention_mask.shape[-1]
    causal = torch.ones(s, s, dtype=torch.bool).tril()
    allowed = causal[None, None] & (attention_mask[:, None, None, :] > 0.5)
    return torch.zeros(allowed.shape).masked_fill(~allowed, MASK_MIN)


def default_inv_freq(dim: int, theta: float) -> torch.Tensor:
    """inv_freq[i] = 1 / theta^(2i/dim), i = 0..dim/2-1, computed as HF does (float32 exponent, float32 power)."""
    return 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))


def rope_cos_sin(inv_freq: torch.Tensor, position_ids: torch.Tensor):
    """cos/sin [batch, seq, 2 * len(inv_freq)] of angle position * inv_freq, the half table repeated twice (HF layout)."""
    freqs = position_ids[:, :, None].float() * inv_freq[None, None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    """[x1, x2] -> [-x2, x1] where x1/x2 are the first/second half of the last axis."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x, cos, sin):
    """x [b, heads, s, d]; cos/sin [b, s, d]."""
    return x * cos[:, None] + rotate_half(x) * sin[:, None]


def last_non_pad_index(input_ids: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """HF *ForSequenceClassification pooling for decoders: index of the right-most token that is not pad,
    argmax(index * non_pad), which is right for both left and right padding (0 if a row is all pad)."""
    non_pad = (input_ids != pad_token_id).long()
    return (torch.arange(input_ids.shape[-1])[None] * non_pad).argmax(-1)


def num_labels(cfg: dict) -> int:
    """HF derives num_labels from id2label (config.json has no num_labels field)."""
    return cfg.get("num_labels") or len(cfg["id2label"])
