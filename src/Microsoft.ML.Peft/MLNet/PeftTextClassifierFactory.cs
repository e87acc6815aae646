using Microsoft.ML.Peft.Hub;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tokenizers;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft;

/// <summary>
/// Builds <see cref="PeftTextClassifier"/>s: <see cref="PretrainedModel.LoadForSequenceClassification"/> (a new head
/// initialised from the seed) plus <see cref="PeftModel.Inject"/> of the options' PEFT method (LoRA, IA3, selective,
/// ...) whose modules_to_save is the classification head; or, for scoring, the base model plus <see cref="PeftModel.FromPretrained"/>.
/// </summary>
internal sealed class PeftTextClassifierFactory : ITextClassifierFactory
{
    /// <summary>Decorrelates the adapter's random stream (e.g. LoRA A init, LoRA dropout) from the head's.</summary>
    private const ulong AdapterStream = 0x4C6F5241UL;

    /// <summary>QLoRA: 4-bit quantization of the base's linear layers before LoRA is injected, or null (float base).</summary>
    private readonly QuantizationOptions? quantization;

    /// <summary>A factory; with <paramref name="quantization"/>, new classifiers get a 4-bit base (QLoRA).</summary>
    internal PeftTextClassifierFactory(QuantizationOptions? quantization = null) => this.quantization = quantization;

    public static PeftTextClassifierFactory Instance { get; } = new();

    public ITextClassifierBackend Create(TextClassificationTrainerOptions options, int numLabels)
    {
        string folder = PretrainedSource.Resolve(options.BaseModel!);
        var reference = BaseModelReference.Describe(options.BaseModel!, folder);
        ulong seed = unchecked((ulong)(long)options.Seed);
        // A checkpoint whose head was trained for another number of classes gets a fresh head (transformers'
        // ignore_mismatched_sizes); a head of the right shape is kept.
        var model = PretrainedModel.LoadForSequenceClassification(folder, numLabels, new ModelLoadOptions { Seed = seed, Log = options.Log, IgnoreMismatchedSizes = true, ConvertToFloat32 = quantization is not null });
        if (quantization is not null)
        {
            reference.Quantization = QLoraBaseQuantization.From(quantization);
            Quantize(model, quantization, options.Log);
        }
        var config = options.CreatePeftConfig(model);
        config.TaskType ??= "SEQ_CLS";
        config.BaseModelNameOrPath ??= options.BaseModel;
        // The new head must train whatever the method: an unset or empty modules_to_save becomes the head.
        if (config.ModulesToSave is not { Count: > 0 }) config.ModulesToSave = [.. model.ClassifierHeadNames];
        var tokenizer = TokenizerLoader.FromFolder(folder);
        (config as PromptTuning.PromptTuningConfig)?.FillInitTextTokenIds(tokenizer);
        var random = new Generator(seed ^ AdapterStream);
        PeftModel peft;
        try
        {
            peft = PeftModel.Inject(model, config, "default", random);
        }
        catch (PeftConfigException e)
        {
            throw new ArgumentException(
                $"the PEFT method {config.PeftType} cannot be applied to the {model.Config.ModelType} model '{options.BaseModel}': {e.Message}. " +
                $"Modules of the model (layer indices as *): {ModuleNameSummary(model)}", nameof(options), e);
        }
        options.Log?.Invoke(peft.TrainableParametersSummary());
        return new PeftTextClassifier(model, peft, tokenizer, reference, random);
    }

    public ITextClassifierBackend Load(BaseModelReference baseModel, string adapterFolder, int numLabels, Action<string>? log)
    {
        string folder = PretrainedSource.Resolve(baseModel.NameOrPath);
        baseModel.Verify(folder);
        var model = PretrainedModel.LoadForSequenceClassification(folder, numLabels, new ModelLoadOptions { Log = log, IgnoreMismatchedSizes = true, ConvertToFloat32 = baseModel.Quantization is not null });
        if (baseModel.Quantization is { } stored) Quantize(model, stored.ToOptions(), log);
        var random = new Generator(0);
        var peft = PeftModel.FromPretrained(model, adapterFolder, "default", isTrainable: false, random);
        model.Eval();
        return new PeftTextClassifier(model, peft, TokenizerLoader.FromFolder(folder), baseModel, random);
    }

    /// <summary>
    /// The model's module names with layer indices folded ("model.layers.*.self_attn.q_proj"): every name a target can
    /// match, short enough for an error message.
    /// </summary>
    private static string ModuleNameSummary(PretrainedModel model) =>
        string.Join(", ", model.NamedModules()
            .Where(m => m.Name.Length > 0)
            .Select(m => string.Join('.', m.Name.Split('.').Select(part => part.All(char.IsAsciiDigit) ? "*" : part)))
            .Distinct(StringComparer.Ordinal));

    /// <summary>Replaces the base's linear layers (not the head) by 4-bit ones, deterministically (same weights, same codes).</summary>
    private static void Quantize(PretrainedModel model, QuantizationOptions options, Action<string>? log)
    {
        var layers = QuantizedModel.QuantizeLinearLayers(model, options);
        log?.Invoke($"quantized {layers.Count} linear layers to {options.Type} (block {options.BlockSize}{(options.DoubleQuant ? ", double quantization" : "")})");
    }
}
