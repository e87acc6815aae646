using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Selective;

/// <summary>
/// Selective fine-tuning: no new layers, a chosen subset of the model's own parameters is made trainable and saved
/// (BitFit, LayerNorm tuning, head-only, last-N-layers, full fine-tuning). PEFT has no such peft_types (its LN_TUNING
/// keeps per-adapter copies under other keys), so these configs use this library's own: "BITFIT",
/// "LAYERNORM_TUNING", "HEAD_ONLY", "LAST_N_LAYERS", "FULL_FINETUNING".
/// </summary>
/// <remarks>
/// <para>Trained tensors are saved as "base_model.model.&lt;parameter path&gt;" in adapter_model.safetensors (and
/// modules_to_save as for every method); loading copies them into the base model's parameters.</para>
/// <para>The selected parameters are the base model's own: <see cref="PeftModel.DisableAdapters"/> refuses (except for
/// HEAD_ONLY, whose head is a modules_to_save copy), and merging has nothing to do. Use one selective adapter per model.</para>
/// <para>JSON keys besides <see cref="PeftConfig"/>'s: target_modules (LAYERNORM_TUNING), num_trainable_layers,
/// layers_to_transform, layers_pattern (LAST_N_LAYERS).</para>
/// </remarks>
public sealed class SelectiveConfig : PeftConfig
{
    private static readonly (SelectiveMethod Method, string PeftType)[] PeftTypes =
    [
        (SelectiveMethod.BitFit, "BITFIT"),
        (SelectiveMethod.LayerNormTuning, "LAYERNORM_TUNING"),
        (SelectiveMethod.HeadOnly, "HEAD_ONLY"),
        (SelectiveMethod.LastLayers, "LAST_N_LAYERS"),
        (SelectiveMethod.Full, "FULL_FINETUNING"),
    ];

    /// <summary>A config for <paramref name="method"/>.</summary>
    public SelectiveConfig(SelectiveMethod method)
    {
        if (!Enum.IsDefined(method)) throw new ArgumentOutOfRangeException(nameof(method), method, "unknown selective method");
        Method = method;
    }

    /// <summary>The subset this config trains.</summary>
    public SelectiveMethod Method { get; }

    /// <inheritdoc/>
    public override string PeftType => PeftTypes.First(p => p.Method == Method).PeftType;

    /// <summary>
    /// target_modules (LayerNorm tuning only): the norm modules to train, by name/suffix or regex; null means every
    /// <see cref="LayerNorm"/> and <see cref="RMSNorm"/>.
    /// </summary>
    public ModuleSelector? TargetModules { get; set; }

    /// <summary>num_trainable_layers (last-N-layers): how many of the highest-numbered layers to train.</summary>
    public int NumTrainableLayers { get; set; }

    /// <summary>layers_to_transform (last-N-layers): explicit layer indices, used instead of <see cref="NumTrainableLayers"/>.</summary>
    public IList<int>? LayersToTransform { get; set; }

    /// <summary>layers_pattern (last-N-layers): the name of the layer list ("layers", "h", "layer"); null: any name followed by an index.</summary>
    public IList<string>? LayersPattern { get; set; }

    /// <summary>BitFit: train every bias.</summary>
    public static SelectiveConfig BitFit() => new(SelectiveMethod.BitFit);

    /// <summary>LayerNorm tuning: train every LayerNorm/RMSNorm (or the named ones).</summary>
    public static SelectiveConfig LayerNormTuning(ModuleSelector? targetModules = null) => new(SelectiveMethod.LayerNormTuning) { TargetModules = targetModules };

    /// <summary>Linear probing: train only <paramref name="headModules"/> (saved as modules_to_save).</summary>
    public static SelectiveConfig HeadOnly(params IEnumerable<string> headModules) => new(SelectiveMethod.HeadOnly) { ModulesToSave = headModules.ToList() };

    /// <summary>Partial fine-tuning of the last <paramref name="layerCount"/> layers of the list named <paramref name="layersPattern"/>.</summary>
    public static SelectiveConfig LastLayers(int layerCount, string? layersPattern = null) =>
        new(SelectiveMethod.LastLayers) { NumTrainableLayers = layerCount, LayersPattern = layersPattern is null ? null : [layersPattern] };

    /// <summary>Full fine-tuning: every float32 parameter.</summary>
    public static SelectiveConfig Full() => new(SelectiveMethod.Full);

    /// <summary>The config for one of this library's selective peft_types, or null when the name is not one.</summary>
    internal static SelectiveConfig? ForPeftType(string peftType) =>
        PeftTypes.Where(p => p.PeftType == peftType).Select(p => new SelectiveConfig(p.Method)).FirstOrDefault();

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (TargetModules is not null && Method != SelectiveMethod.LayerNormTuning)
            throw new PeftConfigException($"target_modules applies to LAYERNORM_TUNING only, not {PeftType}");
        if (Method == SelectiveMethod.LastLayers)
        {
            bool explicitLayers = LayersToTransform is { Count: > 0 };
            if (!explicitLayers && NumTrainableLayers <= 0)
                throw new PeftConfigException($"LAST_N_LAYERS needs num_trainable_layers > 0 (got {NumTrainableLayers}) or layers_to_transform");
            if (explicitLayers && NumTrainableLayers != 0)
                throw new PeftConfigException("set either num_trainable_layers or layers_to_transform, not both");
            if (LayersToTransform?.Any(i => i < 0) == true)
                throw new PeftConfigException($"layers_to_transform must hold non-negative indices, got [{string.Join(", ", LayersToTransform)}]");
        }
        else if (NumTrainableLayers != 0 || LayersToTransform is not null || LayersPattern is not null)
        {
            throw new PeftConfigException($"num_trainable_layers / layers_to_transform / layers_pattern apply to LAST_N_LAYERS only, not {PeftType}");
        }
        if (Method == SelectiveMethod.HeadOnly && ModulesToSave is not { Count: > 0 } && TaskType != "SEQ_CLS")
            throw new PeftConfigException("HEAD_ONLY trains modules_to_save only; name the head (e.g. modules_to_save = [\"classifier\"]) or set task_type SEQ_CLS");
    }

    private protected override void WriteFields(Dictionary<string, object?> fields)
    {
        if (Method == SelectiveMethod.LayerNormTuning) fields["target_modules"] = TargetModules?.ToJsonValue();
        if (Method == SelectiveMethod.LastLayers)
        {
            fields["num_trainable_layers"] = NumTrainableLayers;
            fields["layers_to_transform"] = LayersToTransform?.Cast<object?>().ToList();
            fields["layers_pattern"] = LayersPattern?.Cast<object?>().ToList();
        }
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        if (Method == SelectiveMethod.LayerNormTuning)
        {
            TargetModules = fields.StringOrList("target_modules") switch
            {
                (null, null) => null,
                (string pattern, _) => ModuleSelector.FromPattern(pattern),
                (_, var list) => ModuleSelector.FromNames(list!),
            };
        }
        if (Method == SelectiveMethod.LastLayers)
        {
            NumTrainableLayers = fields.Int("num_trainable_layers", 0);
            LayersToTransform = fields.IntOrList("layers_to_transform");
            LayersPattern = fields.StringOrList("layers_pattern") switch
            {
                (null, null) => null,
                (string single, _) => [single],
                (_, var list) => list,
            };
        }
    }

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator) =>
        SelectiveParameters.Apply(model, this);

    internal override IEnumerable<string> ExtraTrainableParameterNames(Module model) => SelectiveParameters.Select(model, this);

    /// <inheritdoc/>
    internal override string? CannotDisableReason => Method == SelectiveMethod.HeadOnly
        ? null
        : $"{PeftType} trains the base model's own parameters in place, so their pretrained values are gone; keep a copy of the base model to compare against";
}
