"""The expected.json written next to each models/<arch> fixture: which file is which, the semantics the reference
forward follows, and a table of every tensor in expected.safetensors."""
import torch

from nn_llama import rope_inv_freq
from ref_common import describe

COMMON_DECODER = [
    "position ids are 0..8 for both rows in both variants (HF forward without position_ids), stored as <variant>.position_ids",
    "mask: key j visible to query i iff j <= i and attention_mask[j] == 1 (additive float32 min otherwise)",
    "left padding: queries at padding positions see no key, so their hidden states/logits are undefined - compare "
    "last_hidden_state, layer_outputs.* and causal_lm.logits only where attention_mask == 1",
    "sequence_classification.logits = score(h[b, pooled_index[b]]), pooled_index = right-most token != pad_token_id "
    "(HF: argmax(arange(seq) * (ids != pad)))",
    "causal_lm.loss = mean over labels[:, 1:] != -100 of cross_entropy(logits[:, :-1], labels[:, 1:]); labels = ids "
    "with -100 at pads and at each row's first real token",
]
COMMON_ENCODER = [
    "right padding only; padded queries still attend to the real keys, so every position is well defined",
    "attention mask: additive (1 - attention_mask[j]) * float32 min on keys",
]
SEMANTICS = {
    "bert": COMMON_ENCODER + [
        "embeddings = LayerNorm(word[ids] + position[0..8] + token_type[token_type_ids]), eps 1e-12",
        "each layer as in layers/bert_encoder_layer.json (post-LN, exact GELU, intermediate 37)",
        "pooler_output = tanh(bert.pooler.dense(h[:, 0])); sequence_classification.logits = classifier(pooler_output)",
        "token_classification.logits = classifier(h) at every position (that checkpoint has no pooler, like HF)",
    ],
    "roberta": COMMON_ENCODER + [
        "position ids = padding_idx + cumsum(ids != 1) at real tokens, padding_idx (1) at pads: real tokens 2, 3, ...",
        "embeddings = LayerNorm(word + position + token_type[0]), eps 1e-5 (type_vocab_size 1)",
        "layers as BERT; neither checkpoint has a pooler",
        "sequence_classification.logits = classifier.out_proj(tanh(classifier.dense(h[:, 0])))",
        "token_classification.logits = classifier(h) at every position",
    ],
    "distilbert": COMMON_ENCODER + [
        "embeddings = LayerNorm(word + position[0..8]), eps 1e-12; no token types",
        "attention: q = q_lin(x) / sqrt(8) before q k^T; padding keys overwritten with float32 min (masked_fill)",
        "block: a = sa_layer_norm(out_lin(attn) + x); out = output_layer_norm(lin2(gelu(lin1(a))) + a), eps 1e-12",
        "sequence_classification.logits = classifier(relu(pre_classifier(h[:, 0])))",
        "token_classification.logits = classifier(h) at every position",
    ],
    "gpt2": COMMON_DECODER + [
        "Conv1D weights are [in, out]: y = x W + b; c_attn output columns = [q | k | v], 32 each, head h = 8h..8h+7",
        "x0 = wte[ids] + wpe[position]; block: h = x + c_proj(attn(ln_1(x))); out = h + mlp(ln_2(h)); ln_f at the end",
        "scores = q k^T / sqrt(8); mlp = c_proj(gelu_new(c_fc(x))), gelu_new = tanh approximation; n_inner 37",
        "causal_lm.logits = ln_f(h) wte^T (tied: no lm_head tensor in the file)",
    ],
    "gpt_neox": COMMON_DECODER + [
        "qkv = query_key_value(x) viewed [b, s, 4 heads, 24]; per head q = [0:8], k = [8:16], v = [16:24] "
        "(weight rows 24h..24h+23 belong to head h)",
        "rotary_ndims = int(8 * 0.25) = 2: rotate-half RoPE on features 0..1 of each q/k head, inv_freq = [1.0] "
        "(base 10000, dim 2); features 2..7 pass unrotated",
        "scores = q k^T / sqrt(8); parallel residual: out = x + attention(input_layernorm(x)) + "
        "mlp(post_attention_layernorm(x)); mlp = dense_4h_to_h(gelu_exact(dense_h_to_4h(x)))",
        "final_layer_norm; causal_lm.logits = embed_out(h) (untied)",
    ],
    "llama_gqa": COMMON_DECODER + [
        "as layers/llama_decoder_layer.json: RMSNorm eps 1e-6, 4 query heads / 2 KV heads (query head h uses KV head "
        "h // 2), head_dim 8, rotate-half RoPE, SwiGLU MLP (intermediate 37)",
        "rope_scaling llama3 (factor 8, low 1, high 4, original 64): see rope_inv_freq below",
        "final model.norm; causal_lm.logits = lm_head(h) (untied)",
    ],
    "qwen2": COMMON_DECODER + [
        "as llama_gqa but q_proj/k_proj/v_proj have bias (o_proj has none), rope_theta 1e6, no rope scaling",
        "tied embeddings: causal_lm.logits = h embed_tokens^T (no lm_head tensor in the file)",
    ],
}
SUFFIX_NOTES = {
    "input_ids": "int64 token ids [2, 9]; row 1 padded with pad_token_id",
    "attention_mask": "float32 1 = real token, 0 = padding",
    "token_type_ids": "int64 segment ids",
    "position_ids": "int64 positions the model used (documentation; HF computes them itself)",
    "embeddings_output": "input of layer 0 [2, 9, 32]",
    "last_hidden_state": "backbone output [2, 9, 32] (after the final norm for decoders)",
    "pooler_output": "tanh(pooler.dense(h[:, 0])) [2, 32]",
    "sequence_classification.logits": "[2, 3]",
    "sequence_classification.pooled_index": "int64 index of the token the score head reads",
    "token_classification.logits": "[2, 9, 5]",
    "causal_lm.logits": "[2, 9, vocab]",
    "causal_lm.labels": "int64 labels used for causal_lm.loss (-100 = ignored)",
    "causal_lm.loss": "shape [1]",
}


def describe_arch(arch, kind, main, other, other_dir, extra, tensors, precision, checks) -> dict:
    (main_head, main_cfg, _), (other_head, other_cfg, _) = main, other
    files = {
        "config.json + model.safetensors": f"{main_cfg['architectures'][0]} checkpoint (HF key names)",
        f"{other_dir}/config.json + {other_dir}/model.safetensors":
            f"{other_cfg['architectures'][0]} checkpoint with the same backbone weights and its own head",
        "expected.safetensors": "inputs and expected outputs (table below)",
    }
    if "pytorch_model.bin" in extra:
        files["pytorch_model.bin"] = ("torch.save (zip format) of the same state dict as model.safetensors plus the "
                                      "int64 buffer bert.embeddings.position_ids [1, 64] = 0..63 (as older "
                                      "transformers versions saved it; a loader should ignore it)")
    notes = {}
    for name in tensors:
        variant, rest = name.split(".", 1)
        side = variant.replace("_padding", "")
        note = SUFFIX_NOTES.get(rest)
        if rest.startswith("layer_outputs."):
            note = f"output of layer {rest.split('.')[1]} (before the final norm)"
        notes[name] = f"{side} padding: {note}"
    info = {
        "script": "build/reference/models_reference.py",
        "torch": torch.__version__,
        "arch": arch,
        "model_type": main_cfg["model_type"],
        "files": files,
        "weights": "random: every tensor N(0, 0.2^2) except LayerNorm/RMSNorm weights 1 + N(0, 0.2^2)",
        "variants": ["right_padding"] + (["left_padding"] if kind == "decoder" else []),
        "semantics": SEMANTICS[arch],
    }
    if arch == "llama_gqa":
        info["rope_inv_freq"] = rope_inv_freq(8, main_cfg["rope_theta"], main_cfg["rope_scaling"]).tolist()
        info["rope_inv_freq_unscaled"] = rope_inv_freq(8, main_cfg["rope_theta"], None).tolist()
    info["float32_vs_float64_max_abs_diff"] = precision
    info["cross_checks"] = checks
    info["tensors"] = describe(tensors, notes)
    return info
