using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.PromptTuning;

/// <summary>
/// Prompt tuning (Lester et al., 2021; PEFT's <c>PromptTuningConfig</c>, peft_type "PROMPT_TUNING"): a trainable
/// [num_virtual_tokens, token_dim] matrix prepended to the input embeddings; the model stays frozen. Applied with
/// <see cref="PromptTuningModel"/>, not <see cref="PeftModel.Inject"/> (no layer of the model changes).
/// </summary>
/// <remarks>
/// JSON keys: num_virtual_tokens, token_dim, num_transformer_submodules (must be 1: encoder-only and decoder-only
/// models), num_attention_heads, num_layers, prompt_tuning_init, prompt_tuning_init_text, tokenizer_name_or_path,
/// tokenizer_kwargs, plus <see cref="PeftConfig"/>'s. Saved weights: one tensor "prompt_embeddings".
/// </remarks>
public sealed class PromptTuningConfig : PeftConfig
{
    /// <inheritdoc/>
    public override string PeftType => "PROMPT_TUNING";

    /// <summary>num_virtual_tokens: rows of the soft prompt (required, &gt; 0).</summary>
    public int NumVirtualTokens { get; set; }

    /// <summary>token_dim: the embedding width; null → taken from the model (and written back).</summary>
    public int? TokenDim { get; set; }

    /// <summary>num_attention_heads / num_layers: informational, as PEFT records them (filled by the caller or null).</summary>
    public int? NumAttentionHeads { get; set; }

    /// <inheritdoc cref="NumAttentionHeads"/>
    public int? NumLayers { get; set; }

    /// <summary>prompt_tuning_init (default <see cref="PromptTuningInit.Random"/>).</summary>
    public PromptTuningInit Init { get; set; } = PromptTuningInit.Random;

    /// <summary>prompt_tuning_init_text: required for <see cref="PromptTuningInit.Text"/>; its token ids are passed to <see cref="PromptTuningModel"/>.</summary>
    public string? InitText { get; set; }

    /// <summary>tokenizer_name_or_path: the tokenizer that produced the init text's ids (informational).</summary>
    public string? TokenizerNameOrPath { get; set; }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (NumVirtualTokens <= 0) throw new PeftConfigException($"num_virtual_tokens must be a positive integer, got {NumVirtualTokens}");
        if (TokenDim is <= 0) throw new PeftConfigException($"token_dim must be positive, got {TokenDim}");
        if (!Enum.IsDefined(Init)) throw new PeftConfigException($"prompt_tuning_init {Init} is not RANDOM, TEXT or SAMPLE_VOCAB");
        if (Init == PromptTuningInit.Text && string.IsNullOrEmpty(InitText))
            throw new PeftConfigException("prompt_tuning_init TEXT needs prompt_tuning_init_text");
        if (ModulesToSave is { Count: > 0 })
            throw new PeftConfigException("modules_to_save is not supported with prompt tuning here; train the head with a separate method");
    }

    private protected override void WriteFields(Dictionary<string, object?> fields)
    {
        fields["num_virtual_tokens"] = NumVirtualTokens;
        fields["token_dim"] = TokenDim;
        fields["num_transformer_submodules"] = 1;
        fields["num_attention_heads"] = NumAttentionHeads;
        fields["num_layers"] = NumLayers;
        fields["prompt_tuning_init"] = InitName(Init);
        fields["prompt_tuning_init_text"] = InitText;
        fields["tokenizer_name_or_path"] = TokenizerNameOrPath;
        fields.TryAdd("tokenizer_kwargs", null);
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        NumVirtualTokens = fields.Int("num_virtual_tokens", 0);
        TokenDim = fields.NullableInt("token_dim");
        int submodules = fields.Int("num_transformer_submodules", 1);
        if (submodules != 1) throw new PeftConfigException($"{fields.Source}: num_transformer_submodules = {submodules} is not supported (encoder-decoder prompt tuning); only 1");
        NumAttentionHeads = fields.NullableInt("num_attention_heads");
        NumLayers = fields.NullableInt("num_layers");
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

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator) =>
        throw new PeftConfigException("prompt tuning adds no layers to the model; apply it with PromptTuningModel.Create(model, config)");

    private static string InitName(PromptTuningInit init) => init switch
    {
        PromptTuningInit.Text => "TEXT",
        PromptTuningInit.SampleVocab => "SAMPLE_VOCAB",
        _ => "RANDOM",
    };
}
