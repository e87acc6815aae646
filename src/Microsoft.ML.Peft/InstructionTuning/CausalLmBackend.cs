using Microsoft.ML.Peft.Hub;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tokenizers;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.InstructionTuning;

/// <summary>
/// A causal LM with a LoRA adapter (on a 4-bit base for QLoRA) or the options' other PEFT method, and its tokenizer: built fresh for training
/// (<see cref="Create"/>: load → quantize → inject) or from a saved adapter (<see cref="Load"/>: load → verify the
/// weights' SHA-256 → re-quantize with the stored settings → load the adapter frozen).
/// </summary>
internal sealed class CausalLmBackend
{
    /// <summary>Decorrelates the adapter's random stream (LoRA A init, LoRA dropout) from the model's.</summary>
    private const ulong AdapterStream = 0x4C6F5241UL;

    private CausalLmBackend(CausalLanguageModel model, PeftModel peft, Tokenizer tokenizer, BaseModelReference baseModel, int? endOfSequenceId)
    {
        Model = model;
        Peft = peft;
        Tokenizer = tokenizer;
        BaseModel = baseModel;
        if (endOfSequenceId is { } chosen && (uint)chosen >= (uint)model.VocabSize)
            throw new ArgumentOutOfRangeException(nameof(endOfSequenceId), chosen, $"EndOfSequenceTokenId must be a token id of the model's vocabulary (0..{model.VocabSize - 1})");
        EndOfSequenceId = endOfSequenceId ?? model.Config.EosTokenId ?? tokenizer.EndOfSentenceTokenId
            ?? throw new ArgumentException($"the base model '{baseModel.NameOrPath}' defines no end-of-sequence token (eos_token_id in config.json or the tokenizer's EOS), which instruction tuning appends to every response");
        PaddingId = model.Config.PadTokenId ?? tokenizer.PaddingTokenId ?? EndOfSequenceId;
    }

    public CausalLanguageModel Model { get; }

    public PeftModel Peft { get; }

    public Tokenizer Tokenizer { get; }

    public BaseModelReference BaseModel { get; }

    public int EndOfSequenceId { get; }

    public int PaddingId { get; }

    public static CausalLmBackend Create(CausalLmFineTuningEstimator.Options options)
    {
        string folder = PretrainedSource.Resolve(options.BaseModel!);
        var reference = BaseModelReference.Describe(options.BaseModel!, folder);
        ulong seed = unchecked((ulong)(long)options.Seed);
        var model = LoadBase(folder, reference, options.Quantization, options.Log, seed);
        var config = options.PeftConfig is { } method ? MethodConfig(method, options.BaseModel!) : LoraConfigFrom(options);
        var tokenizer = TokenizerLoader.FromFolder(folder);
        (config as PromptTuning.PromptTuningConfig)?.FillInitTextTokenIds(tokenizer);
        PeftModel peft;
        try
        {
            peft = PeftModel.Inject(model, config, "default", new Generator(seed ^ AdapterStream));
        }
        catch (PeftConfigException e)
        {
            throw new ArgumentException($"the PEFT method {config.PeftType} cannot be applied to the {model.Config.ModelType} model '{options.BaseModel}': {e.Message}", nameof(options), e);
        }
        options.Log?.Invoke(peft.TrainableParametersSummary());
        return new CausalLmBackend(model, peft, tokenizer, reference, options.EndOfSequenceTokenId);
    }

    private static LoraConfig LoraConfigFrom(CausalLmFineTuningEstimator.Options options) => new()
    {
        Rank = options.LoraRank,
        Alpha = options.LoraAlpha,
        Dropout = options.LoraDropout,
        TargetModules = options.TargetModules is [var single] && single == ModuleSelector.AllLinearShorthand ? ModuleSelector.AllLinear : ModuleSelector.FromNames(options.TargetModules),
        TaskType = "CAUSAL_LM",
        BaseModelNameOrPath = options.BaseModel,
    };

    /// <summary>The caller's method on a copy (their object is never modified), as a causal-LM adapter of the base model.</summary>
    private static PeftConfig MethodConfig(PeftConfig method, string baseModel)
    {
        try
        {
            method.Validate();
        }
        catch (PeftConfigException e)
        {
            throw new ArgumentException($"Options.PeftConfig ({method.PeftType}) is invalid: {e.Message}", nameof(method), e);
        }
        var config = method.Clone();
        config.TaskType = "CAUSAL_LM";
        config.BaseModelNameOrPath ??= baseModel;
        return config;
    }

    public static CausalLmBackend Load(BaseModelReference baseModel, string adapterFolder, int endOfSequenceId, Action<string>? log)
    {
        string folder = PretrainedSource.Resolve(baseModel.NameOrPath);
        baseModel.Verify(folder);
        var model = LoadBase(folder, baseModel, baseModel.Quantization?.ToOptions(), log, seed: 0);
        var peft = PeftModel.FromPretrained(model, adapterFolder, "default", isTrainable: false, new Generator(0));
        model.Eval();
        return new CausalLmBackend(model, peft, TokenizerLoader.FromFolder(folder), baseModel, endOfSequenceId);
    }

    private static CausalLanguageModel LoadBase(string folder, BaseModelReference reference, QuantizationOptions? quantization, Action<string>? log, ulong seed)
    {
        var model = PretrainedModel.LoadForCausalLM(folder, new ModelLoadOptions { Seed = seed, Log = log, ConvertToFloat32 = quantization is not null });
        if (quantization is not null)
        {
            var layers = QuantizedModel.QuantizeLinearLayers(model, quantization);
            reference.Quantization = QLoraBaseQuantization.From(quantization);
            log?.Invoke($"quantized {layers.Count} linear layers to {quantization.Type} (block {quantization.BlockSize}{(quantization.DoubleQuant ? ", double quantization" : "")})");
        }
        return model;
    }
}
