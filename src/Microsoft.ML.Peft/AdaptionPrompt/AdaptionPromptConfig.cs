using Microsoft.ML.Peft.Models.Llama;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.AdaptionPrompt;

/// <summary>
/// LLaMA-Adapter (Zhang et al., 2023; PEFT's <c>AdaptionPromptConfig</c>, peft_type "ADAPTION_PROMPT"): in the top
/// adapter_layers attention modules, adapter_len learned prompt vectors are projected by the layer's own k_proj/v_proj,
/// attended to by the layer's (rotated) queries in a separate softmax, scaled by a zero-initialised gate and added
/// through o_proj. The gate starts at zero, so the injected model reproduces the base model exactly.
/// Llama-family models only (Llama, Mistral, Qwen2), as in PEFT.
/// </summary>
/// <remarks>
/// Trainable parameters: adapter_layers · (adapter_len · hidden_size + 1). Saved keys as PEFT's:
/// "base_model.model.&lt;…&gt;.layers.{i}.self_attn.adaption_prompt" [1, adapter_len, hidden] and "….adaption_gate" [1].
/// JSON keys: target_modules (only "self_attn"), adapter_len, adapter_layers.
/// </remarks>
public sealed class AdaptionPromptConfig : PeftConfig
{
    private const string ChildName = "adaption";

    /// <inheritdoc/>
    public override string PeftType => "ADAPTION_PROMPT";

    /// <summary>target_modules: the attention submodule name (PEFT's default for Llama: "self_attn").</summary>
    public string TargetModules { get; set; } = "self_attn";

    /// <summary>adapter_len: prompt vectors per adapted layer (required, &gt; 0).</summary>
    public int AdapterLen { get; set; }

    /// <summary>adapter_layers: how many of the top layers are adapted (required, &gt; 0).</summary>
    public int AdapterLayers { get; set; }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (AdapterLen <= 0) throw new PeftConfigException($"adapter_len must be a positive integer, got {AdapterLen}");
        if (AdapterLayers <= 0) throw new PeftConfigException($"adapter_layers must be a positive integer, got {AdapterLayers}");
        if (TargetModules != "self_attn") throw new PeftConfigException($"target_modules '{TargetModules}' is not supported for ADAPTION_PROMPT; Llama-family attention is 'self_attn'");
    }

    /// <inheritdoc/>
    internal override string SavedKey(string layerPath, string suffix) =>
        PeftModel.KeyPrefix + layerPath[..^(ChildName.Length + 1)] + "." + suffix;

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator)
    {
        var attentions = model.NamedModules().Where(m => m.Module is LlamaAttention && m.Name.EndsWith(TargetModules, StringComparison.Ordinal)).ToList();
        if (attentions.Count == 0)
        {
            var names = model.NamedModules().Select(m => m.Name).Where(n => n.EndsWith("attn", StringComparison.Ordinal) || n.EndsWith("attention", StringComparison.Ordinal)).Take(6);
            throw new PeftConfigException($"ADAPTION_PROMPT (LLaMA-Adapter) supports Llama-family models only (Llama, Mistral, Qwen2 'self_attn' modules); {model.GetType().Name} has none (its attention modules: [{string.Join(", ", names)}])");
        }
        if (AdapterLayers > attentions.Count)
            throw new PeftConfigException($"adapter_layers = {AdapterLayers} but {model.GetType().Name} has only {attentions.Count} attention layers");
        var result = new List<string>();
        foreach (var (name, module) in attentions.Skip(attentions.Count - AdapterLayers))
        {
            var attention = (LlamaAttention)module;
            int hidden = attention.HiddenSize;
            if (attention.Adapter is not AdaptionPromptLayer layer)
            {
                layer = new AdaptionPromptLayer();
                attention.SetAdapterModule(layer);
            }
            layer.Add(adapterName, AdapterLen, hidden, generator);
            result.Add(name + "." + ChildName);
        }
        return result;
    }

    private protected override void WriteFields(Dictionary<string, object?> fields)
    {
        fields["target_modules"] = TargetModules;
        fields["adapter_len"] = AdapterLen;
        fields["adapter_layers"] = AdapterLayers;
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        TargetModules = fields.String("target_modules") ?? "self_attn";
        AdapterLen = fields.Int("adapter_len", 0);
        AdapterLayers = fields.Int("adapter_layers", 0);
    }
}
