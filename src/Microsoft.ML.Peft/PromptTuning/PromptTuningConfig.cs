using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.PromptTuning;

/// <summary>
/// Prompt tuning (Lester et al., 2021; PEFT's <c>PromptTuningConfig</c>, peft_type "PROMPT_TUNING"): a trainable
/// [num_virtual_tokens, token_dim] matrix prepended to the input embeddings; the model stays frozen. Applied with
/// <see cref="PeftModel.Inject"/> on any model with a prompt-accepting backbone, or with <see cref="PromptTuningModel"/>
/// on any <see cref="IInputEmbeddingsModel"/>.
/// </summary>
/// <remarks>
/// JSON keys: <see cref="PromptLearningConfig"/>'s plus prompt_tuning_init, prompt_tuning_init_text,
/// tokenizer_name_or_path, tokenizer_kwargs. Saved weights: one tensor "prompt_embeddings". Trainable parameters:
/// num_virtual_tokens · token_dim.
/// </remarks>
public sealed class PromptTuningConfig : PromptLearningConfig
{
    /// <inheritdoc/>
    public override string PeftType => "PROMPT_TUNING";

    /// <summary>prompt_tuning_init (default <see cref="PromptTuningInit.Random"/>).</summary>
    public PromptTuningInit Init { get; set; } = PromptTuningInit.Random;

    /// <summary>prompt_tuning_init_text: required for <see cref="PromptTuningInit.Text"/>.</summary>
    public string? InitText { get; set; }

    /// <summary>
    /// The tokenizer's ids of <see cref="InitText"/> for TEXT init (PEFT tokenizes the text itself; this library has no
    /// tokenizer registry, so the caller passes the ids). Not saved.
    /// </summary>
    public IReadOnlyList<int>? InitTextTokenIds { get; set; }

    /// <summary>tokenizer_name_or_path: the tokenizer that produced the init text's ids (informational).</summary>
    public string? TokenizerNameOrPath { get; set; }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (!Enum.IsDefined(Init)) throw new PeftConfigException($"prompt_tuning_init {Init} is not RANDOM, TEXT or SAMPLE_VOCAB");
        if (Init == PromptTuningInit.Text && string.IsNullOrEmpty(InitText))
            throw new PeftConfigException("prompt_tuning_init TEXT needs prompt_tuning_init_text");
    }

    /// <summary>
    /// What PEFT does with tokenizer_name_or_path: for TEXT init without <see cref="InitTextTokenIds"/>, the ids are
    /// <c>tokenizer(prompt_tuning_init_text)["input_ids"]</c> — the tokenizer's special tokens included (e.g. Llama's
    /// BOS, BERT's [CLS]/[SEP]), as PEFT's <c>PromptEmbedding</c> takes them. The trainers call this with the base
    /// model's tokenizer; ids given by the caller are kept.
    /// </summary>
    internal void FillInitTextTokenIds(Tokenizers.Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (Init != PromptTuningInit.Text || InitTextTokenIds is not null || string.IsNullOrEmpty(InitText)) return;
        InitTextTokenIds = tokenizer.Encode(InitText, options: new Tokenizers.EncodeOptions { Padding = Tokenizers.PaddingStrategy.DoNotPad }).InputIds.ToArray();
    }

    private protected override bool IsPrefix => false;

    private protected override void CopyUnsavedSettings(PeftConfig clone) => ((PromptTuningConfig)clone).InitTextTokenIds = InitTextTokenIds;

    private protected override VirtualTokenEncoder CreateEncoder(IPromptHost host, Generator generator)
    {
        if (InferenceMode && Init == PromptTuningInit.Text && InitTextTokenIds is null)
            return new LookupTableEncoder(PromptInitialization.Rows(host, NumVirtualTokens, PromptTuningInit.Random, null, generator), isPrefix: false);
        return new LookupTableEncoder(PromptInitialization.Rows(host, NumVirtualTokens, Init, InitTextTokenIds, generator), isPrefix: false);
    }

    private protected override void WriteFields(Dictionary<string, object?> fields)
    {
        WriteCommonFields(fields);
        fields["prompt_tuning_init"] = InitName(Init);
        fields["prompt_tuning_init_text"] = InitText;
        fields["tokenizer_name_or_path"] = TokenizerNameOrPath;
        fields.TryAdd("tokenizer_kwargs", null);
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        ReadCommonFields(fields);
        string init = fields.String("prompt_tuning_init") ?? "RANDOM";
        Init = init switch
        {
            "RANDOM" => PromptTuningInit.Random,
            "TEXT" => PromptTuningInit.Text,
            "SAMPLE_VOCAB" => PromptTuningInit.SampleVocab,
            _ => throw fields.Wrong("prompt_tuning_init", "\"RANDOM\", \"TEXT\" or \"SAMPLE_VOCAB\"", init),
        };
        InitText = fields.String("prompt_tuning_init_text");
        TokenizerNameOrPath = fields.String("tokenizer_name_or_path");
    }

    private static string InitName(PromptTuningInit init) => init switch
    {
        PromptTuningInit.Text => "TEXT",
        PromptTuningInit.SampleVocab => "SAMPLE_VOCAB",
        _ => "RANDOM",
    };
}
