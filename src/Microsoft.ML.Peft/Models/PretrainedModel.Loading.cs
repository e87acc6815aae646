using Microsoft.ML.Peft.Hub;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

public abstract partial class PretrainedModel
{
    /// <summary>
    /// Loads a pretrained model like transformers' <c>AutoModelFor….from_pretrained</c>: <paramref name="nameOrPath"/>
    /// is a local folder or a hub id ("owner/name", downloaded into the cache). Reads config.json, builds the module tree
    /// for its <c>model_type</c> and the task (<see cref="ModelLoadOptions.Task"/> or config.json's
    /// <c>architectures</c>), then binds the weights (model.safetensors, a sharded index, or pytorch_model.bin).
    /// </summary>
    /// <remarks>
    /// Every tensor name, shape and dtype is validated before any weight is read or allocated: a missing tensor, a shape
    /// that disagrees with config.json, or an unsupported dtype throws <see cref="ModelLoadException"/> naming the
    /// weights file, the config, the tensor and both shapes (unknown model types throw <see cref="ModelConfigException"/>).
    /// Float32 weights are views of the memory-mapped file (zero-copy; a private copy-on-write mapping, so training them
    /// in place never touches the file); bfloat16/float16 matrices stay in their storage dtype (frozen) unless
    /// <see cref="ModelLoadOptions.ConvertToFloat32"/>. Heads the checkpoint lacks are initialised from
    /// <see cref="ModelLoadOptions.Seed"/>; see <see cref="LoadReport"/>. The model is returned in evaluation mode.
    /// </remarks>
    public static PretrainedModel Load(string nameOrPath, ModelLoadOptions? options = null)
    {
        options ??= new ModelLoadOptions();
        string folder = PretrainedSource.Resolve(nameOrPath, options.Source);
        var config = ModelConfig.Load(folder);
        if (options.NumLabels is int numLabels) config = config with { NumLabels = numLabels };
        var task = options.Task ?? ModelFactory.InferTask(config);
        var dropout = DropoutGenerator(options.Seed);
        var model = ModelFactory.Build(config, task, dropout);
        model.DropoutRandom = dropout;
        var source = Checkpoint.Open(folder);
        try
        {
            model.LoadReport = WeightBinder.Bind(model, source, options);
        }
        catch
        {
            source.Dispose();
            throw;
        }
        model.Eval();
        return model;
    }

    /// <summary>Loads a sequence classifier (<see cref="Load"/> with <see cref="ModelTask.SequenceClassification"/>).</summary>
    public static SequenceClassificationModel LoadForSequenceClassification(string nameOrPath, int? numLabels = null, ModelLoadOptions? options = null) =>
        (SequenceClassificationModel)Load(nameOrPath, (options ?? new ModelLoadOptions()) with
        {
            Task = ModelTask.SequenceClassification,
            NumLabels = numLabels ?? options?.NumLabels,
        });

    /// <summary>Loads a token classifier (<see cref="Load"/> with <see cref="ModelTask.TokenClassification"/>).</summary>
    public static TokenClassificationModel LoadForTokenClassification(string nameOrPath, int? numLabels = null, ModelLoadOptions? options = null) =>
        (TokenClassificationModel)Load(nameOrPath, (options ?? new ModelLoadOptions()) with
        {
            Task = ModelTask.TokenClassification,
            NumLabels = numLabels ?? options?.NumLabels,
        });

    /// <summary>Loads a causal language model (<see cref="Load"/> with <see cref="ModelTask.CausalLM"/>).</summary>
    public static CausalLanguageModel LoadForCausalLM(string nameOrPath, ModelLoadOptions? options = null) =>
        (CausalLanguageModel)Load(nameOrPath, (options ?? new ModelLoadOptions()) with { Task = ModelTask.CausalLM });

    /// <summary>
    /// A randomly initialised model for <paramref name="config"/> (transformers' <c>from_config</c>), every weight drawn
    /// as HF's <c>_init_weights</c> does from <paramref name="seed"/>; in evaluation mode.
    /// </summary>
    public static PretrainedModel Create(ModelConfig config, ModelTask task, ulong seed = 42)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate(config.SourcePath ?? "config");
        var dropout = DropoutGenerator(seed);
        var model = ModelFactory.Build(config, task, dropout);
        model.DropoutRandom = dropout;
        WeightInitializer.Initialize(model, model.NamedParameters().Select(p => p.Name).ToList(), WeightInitializer.InitializerRange(config), new Generator(seed));
        model.Eval();
        return model;
    }

    /// <summary>
    /// The stream every dropout module of the base model draws from (null for a model built outside
    /// <see cref="Load"/>/<see cref="Create"/>). Training checkpoints save and restore its <see cref="Generator.Offset"/>
    /// so that a resumed run draws the same dropout masks as an uninterrupted one.
    /// </summary>
    internal Generator? DropoutRandom { get; private set; }

    /// <summary>Dropout draws from their own stream, so they never repeat the initialisation's random numbers.</summary>
    private static Generator DropoutGenerator(ulong seed) => new(seed ^ 0x5DEECE66DUL);
}
