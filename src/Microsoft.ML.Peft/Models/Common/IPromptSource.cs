using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>
/// Learned vectors that a prompt-learning method feeds into a backbone's forward (the hook PEFT's prompt methods need):
/// virtual tokens in front of the input embeddings (prompt tuning, P-tuning) and/or key/value prefixes at every
/// attention layer (prefix tuning, P-tuning v2). A backbone asks its source once per forward.
/// </summary>
public interface IPromptSource
{
    /// <summary>Virtual tokens put in front of the input embeddings; 0 for none (or while adapters are disabled).</summary>
    int InputPromptLength { get; }

    /// <summary>The virtual token embeddings [InputPromptLength, hidden] (shared by every row of the batch).</summary>
    Tensor InputPrompt();

    /// <summary>Key/value positions put in front of every attention layer's own; 0 for none.</summary>
    int PrefixLength { get; }

    /// <summary>
    /// PEFT's past_key_values for one row: [2·layers, kvHeads, PrefixLength, headDim], layer l's keys at 2l and values
    /// at 2l + 1 (keys are used as they are: no rotary embedding is applied to them).
    /// </summary>
    Tensor PrefixKeyValues();
}
