using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.PromptTuning;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.PrefixTuning;

/// <summary>
/// Prefix tuning (Li &amp; Liang, 2021; PEFT's <c>PrefixTuningConfig</c>, peft_type "PREFIX_TUNING"): learned keys and
/// values for num_virtual_tokens extra positions in front of every attention layer's own. Without
/// <see cref="PrefixProjection"/> this is P-tuning v2's deep prompt (Liu et al., 2022): one trainable vector per layer,
/// position and key/value — PEFT has no separate P-tuning v2 type, and neither has this library.
/// </summary>
/// <remarks>
/// <para>Sizes as PEFT's <c>_prepare_prompt_learning_config</c> sets them: token_dim = hidden size, num_layers, and
/// under grouped-query attention token_dim = kv_heads · head_dim and num_attention_heads = kv_heads.</para>
/// <para>Trainable parameters: without projection n · L · 2 · token_dim; with prefix_projection (the MLP
/// reparameterisation embedding [n, token_dim] → Linear(token_dim, encoder_hidden_size) → tanh →
/// Linear(encoder_hidden_size, L · 2 · token_dim)) n · td + td · h + h + h · 2L·td + 2L·td. After training only
/// the computed [n, 2L·td] table is saved ("prompt_embeddings"), and loading gives that table back as the encoder.</para>
/// <para>JSON keys: <see cref="PromptLearningConfig"/>'s plus encoder_hidden_size, prefix_projection.</para>
/// </remarks>
public sealed class PrefixTuningConfig : PromptLearningConfig
{
    /// <inheritdoc/>
    public override string PeftType => "PREFIX_TUNING";

    /// <summary>prefix_projection: reparameterise the prefix through a two-layer tanh MLP while training (default false).</summary>
    public bool PrefixProjection { get; set; }

    /// <summary>encoder_hidden_size: the MLP's hidden width; null → token_dim (as PEFT fills it).</summary>
    public int? EncoderHiddenSize { get; set; }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (EncoderHiddenSize is <= 0) throw new PeftConfigException($"encoder_hidden_size must be positive, got {EncoderHiddenSize}");
    }

    private protected override bool IsPrefix => true;

    private protected override void FillFromModel(PromptGeometry g)
    {
        int dim = g.KeyValueHeads * g.HeadDim;
        if (TokenDim is { } given && given != dim)
            throw new PeftConfigException($"PREFIX_TUNING: token_dim {given} does not match {g.Architecture}'s key/value width {dim} ({g.KeyValueHeads} heads × {g.HeadDim})");
        TokenDim = dim;
        NumAttentionHeads = g.KeyValueHeads;
        if (NumLayers is { } layers && layers != g.Layers)
            throw new PeftConfigException($"PREFIX_TUNING: num_layers {layers} does not match {g.Architecture}'s {g.Layers} layers");
        NumLayers = g.Layers;
        EncoderHiddenSize ??= dim;
    }

    private protected override VirtualTokenEncoder CreateEncoder(IPromptHost host, Generator generator)
    {
        int td = TokenDim!.Value, width = NumLayers!.Value * 2 * td;
        if (PrefixProjection && !InferenceMode)
            return new PrefixProjectionEncoder(NumVirtualTokens, td, EncoderHiddenSize!.Value, width, generator);
        Tensor table;
        using (TensorScope.Untracked()) table = Tensor.Randn(generator, NumVirtualTokens, width);
        return new LookupTableEncoder(table, isPrefix: true);
    }

    private protected override void WriteFields(Dictionary<string, object?> fields)
    {
        WriteCommonFields(fields);
        fields["encoder_hidden_size"] = EncoderHiddenSize;
        fields["prefix_projection"] = PrefixProjection;
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        ReadCommonFields(fields);
        EncoderHiddenSize = fields.NullableInt("encoder_hidden_size");
        PrefixProjection = fields.Bool("prefix_projection", false);
    }
}
