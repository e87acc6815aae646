namespace Microsoft.ML.Peft.PromptTuning;

/// <summary>How the soft prompt starts (PEFT's <c>PromptTuningInit</c>; JSON values "RANDOM", "TEXT", "SAMPLE_VOCAB").</summary>
public enum PromptTuningInit
{
    /// <summary>Standard normal draws (torch.nn.Embedding's initialisation).</summary>
    Random,

    /// <summary>The word embeddings of prompt_tuning_init_text, repeated or cut to num_virtual_tokens.</summary>
    Text,

    /// <summary>The word embeddings of num_virtual_tokens vocabulary ids drawn uniformly.</summary>
    SampleVocab,
}
