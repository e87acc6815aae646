"""Reference values for one BERT encoder layer and one Llama decoder layer (forward and all gradients), plus the
elementwise-op, optimizer and LR-schedule references (ops_reference.py).

Run:  /usr/bin/python3 build/reference/layers_reference.py
Writes test/Microsoft.ML.Peft.Tests/Fixtures/reference/layers/{bert_encoder_layer,llama_decoder_layer,ops}.{safetensors,json}
"""
import copy

import torch

import ops_reference
from nn_bert import BertLayer
from nn_common import causal_padding_mask, extended_attention_mask, rope_cos_sin
from nn_llama import LlamaDecoderLayer, rope_inv_freq
from ref_common import deterministic, describe, fixture_path, init_random_, max_abs_diff, write_json
from safetensors_io import save_file

LOSS_NOTE = "loss = sum(output.hidden_states * loss.projection); every grad.* is d loss / d <tensor>"


def run_layer(layer, forward, inputs: dict, projection: torch.Tensor):
    """Forward, scalar loss = sum(out * R), backward. Returns (output, loss, {param name: grad}, input grad)."""
    x = inputs["hidden_states"].clone().requires_grad_(True)
    layer.zero_grad()
    out = forward(layer, x)
    loss = (out * projection).sum()
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in layer.named_parameters()}
    return out.detach(), loss.detach(), grads, x.grad.detach().clone()


def precision_report(layer, forward, inputs, projection, out32, grads32, xgrad32) -> dict:
    """Re-runs the same layer in float64 and reports how far the float32 fixture values are from it, so consumers can
    choose tolerances knowing the reference's own round-off."""
    layer64 = copy.deepcopy(layer).double()
    inputs64 = {k: (v.double() if v.is_floating_point() else v) for k, v in inputs.items()}
    out64, _, grads64, xgrad64 = run_layer(layer64, forward, inputs64, projection.double())
    return {
        "output.hidden_states": max_abs_diff(out32, out64),
        "grad.input.hidden_states": max_abs_diff(xgrad32, xgrad64),
        "max over grad.<param>": max(max_abs_diff(grads32[n], grads64[n]) for n in grads32),
    }


def pack(layer, inputs: dict, projection, out, loss, grads, xgrad) -> dict:
    tensors = {name: p.detach().clone() for name, p in layer.named_parameters()}
    for k, v in inputs.items():
        tensors["input." + k] = v
    tensors["output.hidden_states"] = out
    tensors["loss.projection"] = projection
    tensors["loss.value"] = loss.reshape(1)
    tensors["grad.input.hidden_states"] = xgrad
    for name, g in grads.items():
        tensors["grad." + name] = g
    return tensors


def check_against_torch_transformer_layer(layer, x, mask, out) -> float:
    """Independent check: torch.nn.TransformerEncoderLayer (post-norm, exact GELU) loaded with the same weights must
    give the same output as our BertLayer."""
    sa, h = layer.attention.self, x.shape[-1]
    ref = torch.nn.TransformerEncoderLayer(h, sa.heads, layer.intermediate.dense.out_features, dropout=0.0,
                                           activation="gelu", layer_norm_eps=1e-12, batch_first=True, norm_first=False)
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(torch.cat([sa.query.weight, sa.key.weight, sa.value.weight]))
        ref.self_attn.in_proj_bias.copy_(torch.cat([sa.query.bias, sa.key.bias, sa.value.bias]))
        ref.self_attn.out_proj.weight.copy_(layer.attention.output.dense.weight)
        ref.self_attn.out_proj.bias.copy_(layer.attention.output.dense.bias)
        ref.norm1.load_state_dict(layer.attention.output.LayerNorm.state_dict())
        ref.linear1.load_state_dict(layer.intermediate.dense.state_dict())
        ref.linear2.load_state_dict(layer.output.dense.state_dict())
        ref.norm2.load_state_dict(layer.output.LayerNorm.state_dict())
        ref.eval()
        # Pure-Python attention path (the fused fast path is skipped while autograd is recording).
        with torch.enable_grad():
            expected = ref(x.clone().requires_grad_(True), src_key_padding_mask=(mask == 0)).detach()
    diff = max_abs_diff(out, expected)
    assert diff < 1e-5, diff
    return diff


def bert_layer_fixture():
    cfg = {"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64, "layer_norm_eps": 1e-12,
           "hidden_act": "gelu"}
    gen = torch.Generator().manual_seed(1001)
    layer = BertLayer(cfg)
    init_random_(layer, gen, std=0.2)
    layer.eval()
    x = torch.randn(2, 7, 32, generator=gen)
    mask = torch.ones(2, 7)
    mask[1, 5:] = 0.0
    projection = torch.randn(2, 7, 32, generator=gen)
    inputs = {"hidden_states": x, "attention_mask": mask}

    def forward(l, h):
        return l(h, extended_attention_mask(mask).to(h.dtype))

    out, loss, grads, xgrad = run_layer(layer, forward, inputs, projection)
    tensors = pack(layer, inputs, projection, out, loss, grads, xgrad)
    tensors["debug.attention.probs"] = layer.attention.self.last_probs
    torch_layer_diff = check_against_torch_transformer_layer(layer, x, mask, out)
    path = fixture_path("layers", "bert_encoder_layer.safetensors")
    save_file(tensors, path)
    notes = {
        "attention.": "BertLayer parameter, HF key inside the layer (nn.Linear weights are [out, in])",
        "intermediate.": "BertLayer parameter", "output.dense.": "BertLayer parameter",
        "output.LayerNorm.": "BertLayer parameter",
        "input.hidden_states": "layer input x",
        "input.attention_mask": "1 = real token, 0 = padding (row 1: last 2 tokens padded)",
        "output.hidden_states": "layer output (all positions are well defined: padded queries still attend to real keys)",
        "loss.projection": "fixed random R", "loss.value": "sum(output * R), shape [1]",
        "grad.": "gradient of loss.value",
        "debug.attention.probs": "softmax attention probabilities [batch, head, query, key]",
    }
    write_json({
        "script": "build/reference/layers_reference.py",
        "torch": torch.__version__,
        "what": "one Hugging Face BertLayer (post-LayerNorm), eval mode (dropout off)",
        "config": cfg,
        "formulas": [
            "ext_mask[b,0,0,j] = (1 - attention_mask[b,j]) * float32_min  (HF get_extended_attention_mask)",
            "q,k,v = x W^T + b for attention.self.{query,key,value}; split into 4 heads of 8 (head h = features 8h..8h+7)",
            "probs = softmax(q k^T / sqrt(8) + ext_mask) over keys; ctx = probs v, heads concatenated",
            "a = LayerNorm_attention.output(ctx W_o^T + b_o + x), eps 1e-12 (biased variance)",
            "m = gelu_erf(a W_i^T + b_i)  with gelu_erf(z) = z/2 (1 + erf(z/sqrt(2)))  (intermediate.dense)",
            "out = LayerNorm_output(m W_d^T + b_d + a)  (output.dense, output.LayerNorm)",
            LOSS_NOTE,
        ],
        "float32_vs_float64_max_abs_diff": precision_report(layer, forward, inputs, projection, out, grads, xgrad),
        "cross_check": {"torch.nn.TransformerEncoderLayer(post-norm, gelu) same weights, max_abs_diff": torch_layer_diff},
        "tensors": describe(tensors, notes),
    }, path[:-len(".safetensors")] + ".json")


def llama_layer_fixture():
    cfg = {"hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
           "intermediate_size": 48, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu"}
    gen = torch.Generator().manual_seed(1002)
    layer = LlamaDecoderLayer(cfg)
    init_random_(layer, gen, std=0.2)
    layer.eval()
    x = torch.randn(2, 7, 32, generator=gen)
    mask = torch.ones(2, 7)
    mask[1, :2] = 0.0
    # Positions as HF generate() builds them for left padding: cumsum(mask) - 1, pads set to 1.
    position_ids = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)
    # Zero projection rows at padded queries: their outputs are undefined (no key to attend to), so they must not
    # feed the loss; then every gradient below is independent of how an implementation fills those rows.
    projection = torch.randn(2, 7, 32, generator=gen) * mask[:, :, None]
    inputs = {"hidden_states": x, "attention_mask": mask, "position_ids": position_ids}
    inv_freq = rope_inv_freq(8, cfg["rope_theta"], None)
    cos, sin = rope_cos_sin(inv_freq, position_ids)

    def forward(l, h):
        return l(h, cos.to(h.dtype), sin.to(h.dtype), causal_padding_mask(mask).to(h.dtype))

    out, loss, grads, xgrad = run_layer(layer, forward, inputs, projection)
    # Independent check of the mask and position handling: the left-padded row's real tokens must give exactly what
    # the same 5 tokens give alone, unpadded, at positions 0..4.
    with torch.no_grad():
        alone_pos = torch.arange(5)[None]
        c5, s5 = rope_cos_sin(inv_freq, alone_pos)
        alone = layer(x[1:, 2:], c5, s5, causal_padding_mask(torch.ones(1, 5)))
    unpadded_diff = max_abs_diff(out[1:, 2:], alone)
    assert unpadded_diff < 1e-5, unpadded_diff
    tensors = pack(layer, inputs, projection, out, loss, grads, xgrad)
    tensors["debug.rope.cos"] = cos
    tensors["debug.rope.sin"] = sin
    tensors["debug.attention.probs"] = layer.self_attn.last_probs
    path = fixture_path("layers", "llama_decoder_layer.safetensors")
    save_file(tensors, path)
    notes = {
        "input_layernorm.": "LlamaDecoderLayer parameter (HF key inside the layer)",
        "post_attention_layernorm.": "LlamaDecoderLayer parameter", "self_attn.": "LlamaDecoderLayer parameter, no bias",
        "mlp.": "LlamaDecoderLayer parameter, no bias",
        "input.hidden_states": "layer input x",
        "input.attention_mask": "1 = real token, 0 = padding (row 1: first 2 tokens are left padding)",
        "input.position_ids": "int64 RoPE positions: row 0 = 0..6, row 1 = [1,1,0,1,2,3,4] (HF generate's cumsum(mask)-1, pads 1)",
        "output.hidden_states": "layer output; rows where attention_mask == 0 are undefined (all keys masked) - do not compare them",
        "loss.projection": "fixed random R, zero at padded positions", "loss.value": "sum(output * R), shape [1]",
        "grad.": "gradient of loss.value (independent of the undefined padded rows because R is zero there)",
        "debug.rope.cos": "cos table [batch, seq, head_dim] = cos(cat(p*inv_freq, p*inv_freq))",
        "debug.rope.sin": "sin table [batch, seq, head_dim]",
        "debug.attention.probs": "softmax probabilities [batch, query head, query, key]; padded query rows are uniform (undefined)",
    }
    write_json({
        "script": "build/reference/layers_reference.py",
        "torch": torch.__version__,
        "what": "one Hugging Face LlamaDecoderLayer, eager attention",
        "config": cfg,
        "formulas": [
            "rms(x) = weight * x / sqrt(mean(x^2 over hidden) + 1e-6)",
            "h = rms_input_layernorm(x); q = h Wq^T (4 heads x 8), k = h Wk^T, v = h Wv^T (2 KV heads x 8)",
            "inv_freq[i] = 1 / 10000^(2i/8), i = 0..3; angle[b,s,:] = position_ids[b,s] * cat(inv_freq, inv_freq)",
            "rotate_half([x1, x2]) = [-x2, x1] (halves of the head); q' = q cos + rotate_half(q) sin; same for k",
            "query head h uses KV head h // 2 (repeat_interleave: heads 0,1 -> KV 0; heads 2,3 -> KV 1)",
            "mask[b,i,j] = 0 if j <= i and attention_mask[b,j] == 1 else float32_min (added to scores)",
            "probs = softmax(q' k'^T / sqrt(8) + mask); attn = concat_heads(probs v) Wo^T",
            "r = x + attn; out = r + W_down (silu(W_gate rms_post(r)) * W_up rms_post(r)); silu(z) = z sigmoid(z)",
            LOSS_NOTE,
        ],
        "position_ids_dtype": "int64",
        "compare_only_where": "input.attention_mask == 1 for output.hidden_states and debug.attention.probs",
        "float32_vs_float64_max_abs_diff": precision_report(layer, forward, inputs, projection, out, grads, xgrad),
        "cross_check": {"row 1 real tokens vs the same 5 tokens unpadded at positions 0..4, max_abs_diff": unpadded_diff},
        "tensors": describe(tensors, notes),
    }, path[:-len(".safetensors")] + ".json")


def main():
    deterministic(seed=1000, threads=1)
    bert_layer_fixture()
    llama_layer_fixture()
    ops_reference.write_ops_fixture()


if __name__ == "__main__":
    main()
