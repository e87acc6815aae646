using Microsoft.ML.Peft.Hub;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tokenizers;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft;

/// <summary>
/// Builds <see cref="PeftTextClassifier"/>s: <see cref="PretrainedModel.LoadForSequenceClassification"/> (a new head
/// initialised from the seed) plus <see cref="PeftModel.Inject"/> of a LoRA adapter whose modules_to_save is the
/// classification head; or, for scoring, the base model plus <see cref="PeftModel.FromPretrained"/>.
/// </summary>
internal sealed class PeftTextClassifierFactory : ITextClassifierFactory
{
    /// <summary>Decorrelates the adapter's random stream (LoRA A init, LoRA dropout) from the head's.</summary>
    private const ulong AdapterStream = 0x4C6F5241UL;

    /// <summary>QLoRA: 4-bit quantization of the base's linear layers before LoRA is injected, or null (float base).</summary>
    private readonly QuantizationOptions? quantization;

    /// <summary>A factory; with <paramref name="quantization"/>, new classifiers get a 4-bit base (QLoRA).</summary>
    internal PeftTextClassifierFactory(QuantizationOptions? quantization = null) => this.quantization = quantization;

    public static PeftTextClassifierFactory Instance { get; } = new();

    public ITextClassifierBackend Create(LoraTextClassificationTrainer.Options options, int numLabels)
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
        var config = options.LoraConfig?.Clone() as LoraConfig ?? DefaultConfig(options, model);
        config.TaskType ??= "SEQ_CLS";
        config.BaseModelNameOrPath ??= options.BaseModel;
        config.ModulesToSave ??= [.. model.ClassifierHeadNames];
        var random = new Generator(seed ^ AdapterStream);
        var peft = PeftModel.Inject(model, config, "default", random);
        options.Log?.Invoke(peft.TrainableParametersSummary());
        if (options.CheckpointFolder is not null && BaseDropoutModules(model).FirstOrDefault() is { } dropout)
        {
            // The base model's dropout stream is internal to PretrainedModel, so a checkpoint cannot restore its
            // position (the adapter's own stream is restored): say so instead of silently breaking the guarantee.
            options.Log?.Invoke($"note: the base model applies dropout ('{dropout}'); a run resumed from a checkpoint draws other dropout masks than an uninterrupted run would");
        }
        return new PeftTextClassifier(model, peft, TokenizerLoader.FromFolder(folder), reference, random);
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

    /// <summary>Replaces the base's linear layers (not the head) by 4-bit ones, deterministically (same weights, same codes).</summary>
    private static void Quantize(PretrainedModel model, QuantizationOptions options, Action<string>? log)
    {
        var layers = QuantizedModel.QuantizeLinearLayers(model, options);
        log?.Invoke($"quantized {layers.Count} linear layers to {options.Type} (block {options.BlockSize}{(options.DoubleQuant ? ", double quantization" : "")})");
    }

    /// <summary>Dotted names of active dropout modules outside the LoRA layers.</summary>
    private static IEnumerable<string> BaseDropoutModules(PretrainedModel model) =>
        model.NamedModules()
            .Where(m => m.Module is NN.Dropout { P: > 0 } && !m.Name.Contains(".lora_dropout.", StringComparison.Ordinal))
            .Select(m => m.Name);

    private static LoraConfig DefaultConfig(LoraTextClassificationTrainer.Options options, SequenceClassificationModel model)
    {
        var targets = options.TargetModules ?? LoraConfig.DefaultTargetModules(model.Config.ModelType)
            ?? throw new ArgumentException($"there is no default LoRA target for model type '{model.Config.ModelType}'; set Options.TargetModules (e.g. [\"all-linear\"])", nameof(options));
        return new LoraConfig
        {
            Rank = options.LoraRank,
            Alpha = options.LoraAlpha,
            Dropout = options.LoraDropout,
            TargetModules = targets is [var single] && single == ModuleSelector.AllLinearShorthand ? ModuleSelector.AllLinear : ModuleSelector.FromNames(targets),
        };
    }
}
