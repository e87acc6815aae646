using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.PromptTuning;

/// <summary>
/// PEFT's <c>PromptLearningConfig</c>: the settings every soft-prompt method shares (prompt tuning, P-tuning, prefix
/// tuning). The method's encoder goes into the backbone's <c>prompt_encoder</c> slot (<see cref="IPromptHost"/>), so
/// <see cref="PeftModel.Inject"/> and any trainer that drives the model's own forward pick it up unchanged.
/// </summary>
/// <remarks>
/// JSON keys: num_virtual_tokens, token_dim, num_transformer_submodules (only 1: encoder-only and decoder-only
/// models), num_attention_heads, num_layers. Unset sizes are filled from the model at injection, as PEFT's
/// <c>_prepare_prompt_learning_config</c> does. Saved weights: the single tensor "prompt_embeddings" (what the encoder
/// computes), and for SEQ_CLS the head under "base_model.&lt;module&gt;…" (PEFT keeps the model itself as base_model).
/// </remarks>
public abstract class PromptLearningConfig : PeftConfig
{
    /// <summary>num_virtual_tokens: virtual tokens (or prefix positions) per sequence (required, &gt; 0).</summary>
    public int NumVirtualTokens { get; set; }

    /// <summary>token_dim: the width of one virtual token; null → taken from the model (and written back).</summary>
    public int? TokenDim { get; set; }

    /// <summary>num_attention_heads: filled from the model at injection (key/value heads for prefix tuning under GQA, as PEFT).</summary>
    public int? NumAttentionHeads { get; set; }

    /// <summary>num_layers: filled from the model at injection.</summary>
    public int? NumLayers { get; set; }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (NumVirtualTokens <= 0) throw new PeftConfigException($"num_virtual_tokens must be a positive integer, got {NumVirtualTokens}");
        if (TokenDim is <= 0) throw new PeftConfigException($"token_dim must be positive, got {TokenDim}");
    }

    /// <summary>Whether the vectors are key/value prefixes at every layer (prefix tuning) rather than input tokens.</summary>
    private protected abstract bool IsPrefix { get; }

    /// <summary>The encoder for one adapter, sized by the (already filled) config.</summary>
    private protected abstract VirtualTokenEncoder CreateEncoder(IPromptHost host, Generator generator);

    /// <inheritdoc/>
    internal override string SavedKey(string layerPath, string suffix) => suffix;

    /// <inheritdoc/>
    internal override string ModulesKeyPrefix => "base_model.";

    /// <inheritdoc/>
    internal override void PrepareForLoading(Module model, string adapterName)
    {
        foreach (var (_, module) in model.NamedModules())
        {
            if (module is PromptEncoderLayer layer && layer.AdapterNames.Contains(adapterName)) layer.Encoder(adapterName).UseLookupTable();
        }
    }

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator)
    {
        var (path, host) = FindHost(model, PeftType);
        var g = host.PromptGeometry;
        FillFromModel(g);
        int limit = g.MaxPositions;
        if (NumVirtualTokens >= limit)
            throw new PeftConfigException($"{PeftType}: num_virtual_tokens = {NumVirtualTokens} leaves no position for the real tokens: {g.Architecture} has max_position_embeddings = {limit}");
        var encoder = CreateEncoder(host, generator);
        string layerPath = (path.Length == 0 ? "" : path + ".") + "prompt_encoder";
        if (host.PromptSource is PromptEncoderLayer existing)
        {
            existing.Add(adapterName, encoder);
        }
        else
        {
            var layer = new PromptEncoderLayer(g);
            layer.Add(adapterName, encoder);
            host.SetPromptModule(layer);
        }
        return [layerPath];
    }

    /// <summary>Fills token_dim, num_attention_heads, num_layers from the model and checks what was given.</summary>
    private protected virtual void FillFromModel(PromptGeometry g)
    {
        if (TokenDim is { } dim && dim != g.HiddenSize)
            throw new PeftConfigException($"{PeftType}: token_dim {dim} does not match {g.Architecture}'s hidden size {g.HiddenSize}");
        TokenDim = g.HiddenSize;
        NumAttentionHeads ??= g.AttentionHeads;
        NumLayers ??= g.Layers;
    }

    /// <summary>The backbone a prompt method goes into: the model itself or its first descendant that is an <see cref="IPromptHost"/>.</summary>
    internal static (string Path, IPromptHost Host) FindHost(Module model, string peftType)
    {
        foreach (var (name, module) in model.NamedModules())
        {
            if (module is IPromptHost host) return (name, host);
        }
        throw new PeftConfigException($"{peftType} needs a transformer backbone that accepts prompts (BERT, RoBERTa, DistilBERT, Llama/Mistral/Qwen2, GPT-2, GPT-NeoX); {model.GetType().Name} has none");
    }

    private protected void WriteCommonFields(Dictionary<string, object?> fields)
    {
        fields["num_virtual_tokens"] = NumVirtualTokens;
        fields["token_dim"] = TokenDim;
        fields["num_transformer_submodules"] = 1;
        fields["num_attention_heads"] = NumAttentionHeads;
        fields["num_layers"] = NumLayers;
    }

    private protected void ReadCommonFields(ConfigFields fields)
    {
        NumVirtualTokens = fields.Int("num_virtual_tokens", 0);
        TokenDim = fields.NullableInt("token_dim");
        int? submodules = fields.NullableInt("num_transformer_submodules");
        if (submodules is not (null or 1))
            throw new PeftConfigException($"{fields.Source}: num_transformer_submodules = {submodules} is not supported (encoder-decoder models); only 1");
        NumAttentionHeads = fields.NullableInt("num_attention_heads");
        NumLayers = fields.NullableInt("num_layers");
    }

    internal bool IsPrefixMethod => IsPrefix;
}
