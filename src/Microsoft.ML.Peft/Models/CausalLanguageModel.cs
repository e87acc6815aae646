using Microsoft.ML.Peft.Generation;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>
/// A decoder with its language-modelling head (HF <c>LlamaForCausalLM</c>, <c>GPT2LMHeadModel</c>,
/// <c>GPTNeoXForCausalLM</c>, Mistral, Qwen2): logits [batch, seq, vocab] = h·Wᵀ with W either the module
/// <c>lm_head</c> / <c>embed_out</c> or, with tie_word_embeddings, the input embedding table itself (then the model has
/// no head parameter, as the checkpoint has no head tensor).
/// </summary>
public sealed class CausalLanguageModel : PretrainedModel
{
    private readonly ModuleSlot<DecoderModel> decoder;
    private readonly ModuleSlot<LinearLayer>? head;
    private readonly string[] heads;

    internal CausalLanguageModel(ModelConfig config, DecoderModel decoder, string backbonePrefix, string headName, bool tied)
        : base(config, backbonePrefix)
    {
        this.decoder = RegisterModule(backbonePrefix, decoder);
        if (!tied) head = RegisterModule<LinearLayer>(headName, Placeholder.Linear(config.HiddenSize, config.VocabSize, bias: false));
        heads = tied ? [] : [headName];
    }

    /// <inheritdoc/>
    public override ModelTask Task => ModelTask.CausalLM;

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadModuleNames => heads;

    /// <summary>The backbone.</summary>
    public DecoderModel Decoder => decoder.Module;

    /// <summary>The output projection is pretrained: it keeps the checkpoint's dtype like the backbone.</summary>
    internal override IReadOnlyList<string> Float32ModuleNames => [];

    /// <summary>Whether the output projection is the input embedding table.</summary>
    public bool TiedEmbeddings => head is null;

    /// <summary>Vocabulary size (columns of the logits).</summary>
    public int VocabSize => Config.VocabSize;

    /// <summary>
    /// Next-token logits [batch, seq, vocab] (or [batch, 1, vocab] with <paramref name="lastTokenOnly"/>, which skips
    /// the vocabulary projection of every other position — what generation needs). Arguments as
    /// <see cref="DecoderModel.Forward"/>.
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null, KvCache? cache = null, bool lastTokenOnly = false)
    {
        var hidden = decoder.Module.Forward(inputIds, attentionMask, positionIds, cache);
        if (lastTokenOnly) hidden = hidden.Narrow(1, hidden.Size(1) - 1, 1);
        return Project(hidden);
    }

    /// <summary>Applies the output projection to hidden states [..., hidden].</summary>
    public Tensor Project(Tensor hidden)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        return head is null ? hidden.Linear(decoder.Module.InputEmbeddings.Weight) : head.Module.Forward(hidden);
    }

    /// <summary>
    /// transformers' causal-LM loss: mean cross-entropy of logits[:, :−1] against labels[:, 1:] (int32 [batch, seq]),
    /// skipping labels equal to −100 (padding, prompt tokens).
    /// </summary>
    public static Tensor LanguageModelingLoss(Tensor logits, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(labels);
        if (logits.Rank != 3 || labels.Rank != 2 || labels.Size(0) != logits.Size(0) || labels.Size(1) != logits.Size(1))
            throw new ArgumentException($"logits {logits} must be [batch, seq, vocab] and labels {labels} [batch, seq]");
        int t = logits.Size(1);
        var shiftedLabels = labels.Narrow(1, 1, t - 1);
        return logits.Narrow(1, 0, t - 1).CrossEntropy(shiftedLabels.IsContiguous ? shiftedLabels : shiftedLabels.Contiguous());
    }
}
