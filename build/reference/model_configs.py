"""The tiny random-weight checkpoints written by models_reference.py: HF config.json contents (exact HF field names)
and how to build each architecture with each head. Sizes: hidden 32, 2 layers, 4 heads (head size 8),
intermediate 37 (odd on purpose), vocabularies 99-128 (all different), max positions 64."""
from nn_bert import EncoderWithHead
from nn_distilbert import DistilBertWithHead
from nn_gpt2 import GPT2WithHead
from nn_gpt_neox import GPTNeoXWithHead
from nn_llama import LlamaWithHead

SEQ_LABELS = 3   # *ForSequenceClassification
TOKEN_LABELS = 5  # *ForTokenClassification (different on purpose, so the two heads cannot be confused)


def labels(n: int) -> dict:
    return {"id2label": {str(i): f"LABEL_{i}" for i in range(n)}, "label2id": {f"LABEL_{i}": i for i in range(n)}}


BERT = {
    "attention_probs_dropout_prob": 0.1, "classifier_dropout": None, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "hidden_size": 32, "initializer_range": 0.2, "intermediate_size": 37, "layer_norm_eps": 1e-12,
    "max_position_embeddings": 64, "model_type": "bert", "num_attention_heads": 4, "num_hidden_layers": 2,
    "pad_token_id": 0, "position_embedding_type": "absolute", "torch_dtype": "float32", "type_vocab_size": 2,
    "use_cache": True, "vocab_size": 99,
}
ROBERTA = {
    "attention_probs_dropout_prob": 0.1, "bos_token_id": 0, "classifier_dropout": None, "eos_token_id": 2,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 32, "initializer_range": 0.2,
    "intermediate_size": 37, "layer_norm_eps": 1e-05, "max_position_embeddings": 66, "model_type": "roberta",
    "num_attention_heads": 4, "num_hidden_layers": 2, "pad_token_id": 1, "position_embedding_type": "absolute",
    "torch_dtype": "float32", "type_vocab_size": 1, "use_cache": True, "vocab_size": 101,
}
DISTILBERT = {
    "activation": "gelu", "attention_dropout": 0.1, "dim": 32, "dropout": 0.1, "hidden_dim": 37,
    "initializer_range": 0.2, "max_position_embeddings": 64, "model_type": "distilbert", "n_heads": 4, "n_layers": 2,
    "pad_token_id": 0, "qa_dropout": 0.1, "seq_classif_dropout": 0.2, "sinusoidal_pos_embds": False,
    "tie_weights_": True, "torch_dtype": "float32", "vocab_size": 103,
}
GPT2 = {
    "activation_function": "gelu_new", "attn_pdrop": 0.1, "bos_token_id": 1, "embd_pdrop": 0.1, "eos_token_id": 2,
    "initializer_range": 0.2, "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_embd": 32, "n_head": 4,
    "n_inner": 37, "n_layer": 2, "n_positions": 64, "pad_token_id": 0, "reorder_and_upcast_attn": False,
    "resid_pdrop": 0.1, "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True,
    "summary_activation": None, "summary_first_dropout": 0.1, "summary_proj_to_labels": True,
    "summary_type": "cls_index", "summary_use_proj": True, "tie_word_embeddings": True, "torch_dtype": "float32",
    "use_cache": True, "vocab_size": 113,
}
GPT_NEOX = {
    "attention_bias": True, "attention_dropout": 0.0, "bos_token_id": 1, "classifier_dropout": 0.1, "eos_token_id": 2,
    "hidden_act": "gelu", "hidden_dropout": 0.0, "hidden_size": 32, "initializer_range": 0.2,
    "intermediate_size": 37, "layer_norm_eps": 1e-05, "max_position_embeddings": 64, "model_type": "gpt_neox",
    "num_attention_heads": 4, "num_hidden_layers": 2, "pad_token_id": 0, "rope_scaling": None,
    "rotary_emb_base": 10000, "rotary_pct": 0.25, "tie_word_embeddings": False, "torch_dtype": "float32",
    "use_cache": True, "use_parallel_residual": True, "vocab_size": 120,
}
LLAMA_GQA = {
    "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2, "head_dim": 8,
    "hidden_act": "silu", "hidden_size": 32, "initializer_range": 0.2, "intermediate_size": 37,
    "max_position_embeddings": 512, "mlp_bias": False, "model_type": "llama", "num_attention_heads": 4,
    "num_hidden_layers": 2, "num_key_value_heads": 2, "pad_token_id": 0, "pretraining_tp": 1, "rms_norm_eps": 1e-06,
    # original_max_position_embeddings 64 puts the 4 RoPE wavelengths (2pi * 1, 10, 100, 1000) into all three llama3
    # bands: 6.3 < 64/4 kept, 16 <= 62.8 <= 64 smoothed, 628 and 6283 > 64 divided by the factor.
    "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 64, "rope_type": "llama3"},
    "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float32", "use_cache": True,
    "vocab_size": 128,
}
QWEN2 = {
    "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 32,
    "initializer_range": 0.2, "intermediate_size": 37, "max_position_embeddings": 64, "max_window_layers": 2,
    "model_type": "qwen2", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
    "pad_token_id": 0, "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000.0, "sliding_window": None,
    "tie_word_embeddings": True, "torch_dtype": "float32", "use_cache": True, "use_sliding_window": False,
    "vocab_size": 127,
}


def config(base: dict, architecture: str, n_labels: int) -> dict:
    cfg = {"architectures": [architecture]}
    cfg.update(base)
    cfg.update(labels(n_labels))
    return dict(sorted(cfg.items()))


# arch -> (kind, base config, [(head, HF class, num_labels, builder)], the backbone's layer list)
ARCHS = {
    "bert": ("encoder", BERT, [
        ("sequence", "BertForSequenceClassification", SEQ_LABELS, lambda c: EncoderWithHead(c, "bert", "bert_sequence")),
        ("token", "BertForTokenClassification", TOKEN_LABELS, lambda c: EncoderWithHead(c, "bert", "token"))],
        lambda m: m.bert.encoder.layer),
    "roberta": ("encoder", ROBERTA, [
        ("sequence", "RobertaForSequenceClassification", SEQ_LABELS,
         lambda c: EncoderWithHead(c, "roberta", "roberta_sequence")),
        ("token", "RobertaForTokenClassification", TOKEN_LABELS, lambda c: EncoderWithHead(c, "roberta", "token"))],
        lambda m: m.roberta.encoder.layer),
    "distilbert": ("encoder", DISTILBERT, [
        ("sequence", "DistilBertForSequenceClassification", SEQ_LABELS, lambda c: DistilBertWithHead(c, "sequence")),
        ("token", "DistilBertForTokenClassification", TOKEN_LABELS, lambda c: DistilBertWithHead(c, "token"))],
        lambda m: m.distilbert.transformer.layer),
    "gpt2": ("decoder", GPT2, [
        ("causal_lm", "GPT2LMHeadModel", SEQ_LABELS, lambda c: GPT2WithHead(c, "causal_lm")),
        ("sequence", "GPT2ForSequenceClassification", SEQ_LABELS, lambda c: GPT2WithHead(c, "sequence"))],
        lambda m: m.transformer.h),
    "gpt_neox": ("decoder", GPT_NEOX, [
        ("causal_lm", "GPTNeoXForCausalLM", SEQ_LABELS, lambda c: GPTNeoXWithHead(c, "causal_lm")),
        ("sequence", "GPTNeoXForSequenceClassification", SEQ_LABELS, lambda c: GPTNeoXWithHead(c, "sequence"))],
        lambda m: m.gpt_neox.layers),
    "llama_gqa": ("decoder", LLAMA_GQA, [
        ("causal_lm", "LlamaForCausalLM", SEQ_LABELS, lambda c: LlamaWithHead(c, "causal_lm")),
        ("sequence", "LlamaForSequenceClassification", SEQ_LABELS, lambda c: LlamaWithHead(c, "sequence"))],
        lambda m: m.model.layers),
    "qwen2": ("decoder", QWEN2, [
        ("causal_lm", "Qwen2ForCausalLM", SEQ_LABELS, lambda c: LlamaWithHead(c, "causal_lm", qkv_bias=True)),
        ("sequence", "Qwen2ForSequenceClassification", SEQ_LABELS,
         lambda c: LlamaWithHead(c, "sequence", qkv_bias=True))],
        lambda m: m.model.layers),
}
