using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.PromptTuning;

/// <summary>
/// A frozen model with a trainable soft prompt (PEFT's <c>PeftModel</c> with a prompt-tuning <c>prompt_encoder</c>):
/// the forward embeds the input ids, puts the [num_virtual_tokens, hidden] prompt in front of every sequence, extends
/// the attention mask with ones, and runs the model from embeddings. Outputs that are per position (hidden states,
/// LM logits) therefore carry num_virtual_tokens extra leading positions.
/// </summary>
public sealed class PromptTuningModel
{
    /// <summary>The key PEFT saves the prompt under in adapter_model.safetensors.</summary>
    public const string PromptEmbeddingsKey = "prompt_embeddings";

    private readonly IInputEmbeddingsModel embeddingsModel;
    private readonly Embedding prompt;

    private PromptTuningModel(Module model, PromptTuningConfig config, Embedding prompt)
    {
        Model = model;
        embeddingsModel = (IInputEmbeddingsModel)model;
        Config = config;
        this.prompt = prompt;
    }

    /// <summary>The (frozen) model.</summary>
    public Module Model { get; }

    /// <summary>The configuration (token_dim filled in from the model).</summary>
    public PromptTuningConfig Config { get; }

    /// <summary>The soft prompt [num_virtual_tokens, hidden] (the trainable parameter).</summary>
    public Tensor PromptEmbeddings => prompt.Weight;

    /// <summary>
    /// Freezes <paramref name="model"/> and creates its soft prompt. RANDOM draws N(0, 1) from
    /// <paramref name="generator"/> (default seed 0); TEXT copies the word embeddings of
    /// <paramref name="initTextTokenIds"/> (the tokenizer's ids of prompt_tuning_init_text, repeated or cut to
    /// num_virtual_tokens as PEFT does); SAMPLE_VOCAB copies the rows of num_virtual_tokens uniformly drawn ids.
    /// </summary>
    /// <exception cref="PeftConfigException">The model does not implement <see cref="IInputEmbeddingsModel"/>, token_dim disagrees with it, or TEXT init has no token ids.</exception>
    public static PromptTuningModel Create(Module model, PromptTuningConfig config, Generator? generator = null, IReadOnlyList<int>? initTextTokenIds = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        config = (PromptTuningConfig)config.Clone();
        if (model is not IInputEmbeddingsModel embeddings)
            throw new PeftConfigException($"prompt tuning needs a model that implements {nameof(IInputEmbeddingsModel)} (Embed and ForwardEmbeddings); {model.GetType().Name} does not");
        int hidden = embeddings.HiddenSize;
        if (config.TokenDim is { } dim && dim != hidden)
            throw new PeftConfigException($"token_dim {dim} does not match the model's hidden size {hidden}");
        config.TokenDim = hidden;
        int n = config.NumVirtualTokens;
        generator ??= new Generator(0);
        var promptEncoder = new Embedding(PromptInitialization.Rows(embeddings.InputEmbeddingWeight, hidden, n, config.Init, initTextTokenIds ?? config.InitTextTokenIds, generator));
        model.SetRequiresGrad(false);
        promptEncoder.SetRequiresGrad(!config.InferenceMode);
        return new PromptTuningModel(model, config, promptEncoder);
    }

    /// <summary>
    /// Runs the model on int32 <paramref name="inputIds"/> [batch, seq] with the prompt prepended; the mask (int32
    /// [batch, seq], 1 = attend, or null) is extended with ones for the prompt.
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.Rank != 2) throw new ArgumentException($"input_ids must be [batch, seq], got {inputIds}", nameof(inputIds));
        var embeds = embeddingsModel.Embed(inputIds);
        return embeddingsModel.ForwardEmbeddings(PrependPrompt(embeds), ExtendAttentionMask(attentionMask, inputIds.Size(0), inputIds.Size(1)));
    }

    /// <summary>[batch, seq, hidden] → [batch, n + seq, hidden] with the prompt in the first n positions of every row.</summary>
    public Tensor PrependPrompt(Tensor inputsEmbeds)
    {
        ArgumentNullException.ThrowIfNull(inputsEmbeds);
        int hidden = PromptEmbeddings.Size(1);
        if (inputsEmbeds.Rank != 3 || inputsEmbeds.Size(2) != hidden)
            throw new ArgumentException($"inputs_embeds must be [batch, seq, {hidden}], got {inputsEmbeds}", nameof(inputsEmbeds));
        int batch = inputsEmbeds.Size(0);
        var prompts = PromptEmbeddings.Unsqueeze(0).Expand(batch, PromptEmbeddings.Size(0), hidden);
        return Tensor.Concat([prompts, inputsEmbeds], 1);
    }

    /// <summary>The mask for the prompted sequence: ones for the n prompt positions, then <paramref name="attentionMask"/> (null stays null).</summary>
    public Tensor? ExtendAttentionMask(Tensor? attentionMask, int batch, int seq)
    {
        if (attentionMask is null) return null;
        if (attentionMask.DType != DType.Int32 || attentionMask.Rank != 2 || attentionMask.Size(0) != batch || attentionMask.Size(1) != seq)
            throw new ArgumentException($"attention_mask must be int32 [{batch}, {seq}], got {attentionMask}", nameof(attentionMask));
        int n = PromptEmbeddings.Size(0);
        var mask = attentionMask.ToInt32Array();
        var extended = new int[batch * (n + seq)];
        for (int b = 0; b < batch; b++)
        {
            extended.AsSpan(b * (n + seq), n).Fill(1);
            mask.AsSpan(b * seq, seq).CopyTo(extended.AsSpan(b * (n + seq) + n));
        }
        return Tensor.FromInt32(extended, batch, n + seq);
    }

    /// <summary>The prompt when it is trainable (what to give the optimizer).</summary>
    public IEnumerable<(string Name, Tensor Parameter)> TrainableParameters()
    {
        if (PromptEmbeddings.RequiresGrad) yield return ("prompt_encoder.default.embedding.weight", PromptEmbeddings);
        foreach (var p in Model.NamedParameters().Where(p => p.Parameter.RequiresGrad)) yield return p;
    }

    /// <summary>(trainable, all) as PEFT counts them: the model's distinct parameters (4-bit weights unpacked) plus the prompt.</summary>
    public (long Trainable, long All) GetNumberOfTrainableParameters()
    {
        long all = PromptEmbeddings.Count + Model.NamedModules().Sum(m => m.Module.PackedWeightCount), trainable = PromptEmbeddings.RequiresGrad ? PromptEmbeddings.Count : 0;
        foreach (var p in Model.Parameters())
        {
            all += p.Count;
            if (p.RequiresGrad) trainable += p.Count;
        }
        return (trainable, all);
    }

    /// <summary>PEFT's line "trainable params: … || all params: … || trainable%: …".</summary>
    public string TrainableParametersSummary()
    {
        var (trainable, all) = GetNumberOfTrainableParameters();
        return PythonFormat.TrainableParametersLine(trainable, all);
    }

    /// <summary>Writes <see cref="TrainableParametersSummary"/> and a newline (standard output by default).</summary>
    public void PrintTrainableParameters(TextWriter? writer = null) => (writer ?? Console.Out).WriteLine(TrainableParametersSummary());

    /// <summary>Writes adapter_config.json (inference_mode true) and adapter_model.safetensors holding "prompt_embeddings" [n, hidden].</summary>
    public void SavePretrained(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (File.Exists(directory)) throw new IOException($"'{directory}' is a file; SavePretrained needs a directory");
        Directory.CreateDirectory(directory);
        var writer = new SafeTensorsWriter();
        writer.Add(PromptEmbeddingsKey, PromptEmbeddings.ToArray(), PromptEmbeddings.Shape);
        writer.Save(Path.Combine(directory, PeftModel.WeightsFileName));
        var config = (PromptTuningConfig)Config.Clone();
        config.InferenceMode = true;
        config.Save(directory);
    }

    /// <summary>
    /// Loads a prompt saved by <see cref="SavePretrained"/> or PEFT. The file must hold exactly "prompt_embeddings"
    /// [num_virtual_tokens, hidden]; every problem is reported naming the file before anything changes. Frozen unless
    /// <paramref name="isTrainable"/>.
    /// </summary>
    public static PromptTuningModel FromPretrained(Module model, string directory, bool isTrainable = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(directory);
        if (PeftConfig.Load(directory) is not PromptTuningConfig config)
            throw new PeftConfigException($"{Path.Combine(directory, PeftConfig.ConfigFileName)} is not a PROMPT_TUNING adapter");
        string weights = Path.Combine(directory, PeftModel.WeightsFileName);
        if (!File.Exists(weights)) throw new PeftConfigException($"adapter weights '{weights}' do not exist");
        float[] values;
        using (var file = SafeTensorsFile.Open(weights))
        {
            var extra = file.Names.Where(n => n != PromptEmbeddingsKey).ToList();
            if (!file.TryGetTensor(PromptEmbeddingsKey, out var view) || extra.Count > 0)
                throw new PeftConfigException($"{weights} must hold exactly '{PromptEmbeddingsKey}'; it holds [{string.Join(", ", file.Names)}]");
            int expectedDim = config.TokenDim ?? (model as IInputEmbeddingsModel)?.HiddenSize ?? -1;
            if (view.Rank != 2 || view.Shape[0] != config.NumVirtualTokens || view.Shape[1] != expectedDim)
                throw new PeftConfigException($"{weights}: '{PromptEmbeddingsKey}' has shape [{string.Join(", ", view.Shape)}] but the config asks for [{config.NumVirtualTokens}, {expectedDim}]");
            values = view.ToFloat32Array();
        }
        config.InferenceMode = !isTrainable;
        var init = config.Init;
        config.Init = PromptTuningInit.Random; // the values come from the file; no init text ids are needed
        var result = Create(model, config);
        result.Config.Init = init;
        values.CopyTo(result.PromptEmbeddings.AsSpan<float>());
        return result;
    }
}
