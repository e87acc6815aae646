using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tokenizers;
using Microsoft.ML.Peft.Training;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft;

/// <summary>
/// A pretrained sequence classifier (<see cref="SequenceClassificationModel"/>: BERT/RoBERTa/DistilBERT read the
/// first token, Llama/GPT-2/GPT-NeoX the last real token) carrying a PEFT adapter (any method), with the tokenizer of its folder.
/// </summary>
internal sealed class PeftTextClassifier : ITextClassifierBackend
{
    public PeftTextClassifier(SequenceClassificationModel model, PeftModel peft, Tokenizer tokenizer, BaseModelReference baseModel, Generator adapterRandom)
    {
        Model = model;
        Peft = peft;
        Tokenizer = tokenizer;
        BaseModel = baseModel;
        // Both streams are checkpointed, so a resumed run draws the same LoRA and base-model dropout masks as an
        // uninterrupted one (the base model's dropout stream exists for every model built by PretrainedModel).
        RandomStreams = model.DropoutRandom is { } dropout ? [adapterRandom, dropout] : [adapterRandom];
        // Decoders with a pad_token_id pool the last id that is not padding, so padding must use exactly that id;
        // otherwise any id works (padded keys are masked) and the tokenizer's own choice is taken.
        PaddingId = model.Config.PadTokenId ?? tokenizer.PaddingTokenId ?? tokenizer.UnknownTokenId ?? tokenizer.EndOfSentenceTokenId ?? 0;
        ParametersWhenBuilt = peft.GetNumberOfTrainableParameters();
    }

    /// <summary>
    /// (trainable, all) as PEFT counts them when this classifier was built, i.e. while it trains. The fitted model's
    /// own count is smaller for methods that drop a reparameterisation at the end of training (prefix_projection's
    /// MLP, P-tuning's encoders become lookup tables).
    /// </summary>
    public (long Trainable, long All) ParametersWhenBuilt { get; }

    public SequenceClassificationModel Model { get; }

    public PeftModel Peft { get; }

    public Module Module => Model;

    public int NumLabels => Model.NumLabels;

    public Tokenizer Tokenizer { get; }

    public int PaddingId { get; }

    public bool UsesTokenTypeIds => Model.UsesTokenTypeIds;

    public BaseModelReference BaseModel { get; }

    public string PeftType => Peft.ActiveConfig.PeftType;

    public IReadOnlyList<Generator> RandomStreams { get; }

    public Tensor Forward(TokenBatch batch) =>
        Model.Forward(batch.InputIds, batch.AttentionMask, UsesTokenTypeIds ? batch.TokenTypeIds : null, batch.BatchSize, batch.SequenceLength);

    public void SaveAdapter(string folder) => Peft.SavePretrained(folder);
}
