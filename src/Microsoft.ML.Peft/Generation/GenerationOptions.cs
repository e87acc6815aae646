namespace Microsoft.ML.Peft.Generation;

/// <summary>
/// How <see cref="TextGeneration"/> picks tokens, with transformers' <c>GenerationConfig</c> names and defaults:
/// greedy unless <see cref="DoSample"/>; sampling applies repetition penalty → temperature → top-k → top-p, in that order.
/// </summary>
public sealed record GenerationOptions
{
    /// <summary>Most tokens to generate after the prompt (<c>max_new_tokens</c>, default 20).</summary>
    public int MaxNewTokens { get; init; } = 20;

    /// <summary>Sample from the (warped) distribution instead of taking the most likely token (<c>do_sample</c>).</summary>
    public bool DoSample { get; init; }

    /// <summary>Logits are divided by this before sampling (<c>temperature</c>, &gt; 0; 1 = unchanged).</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Sample only among the k most likely tokens (<c>top_k</c>; 0 = all; default 50 as transformers).</summary>
    public int TopK { get; init; } = 50;

    /// <summary>Sample only from the smallest set of most likely tokens whose probability reaches top_p (<c>top_p</c>, (0, 1]).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>
    /// CTRL's repetition penalty (<c>repetition_penalty</c>, &gt; 0; 1 = off): logits of tokens already in the sequence
    /// are divided by it when positive and multiplied when negative. Applies to greedy decoding too.
    /// </summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>Seed of the engine generator that draws the samples (same seed, same tokens).</summary>
    public ulong Seed { get; init; }

    /// <summary>Token ids that end a sequence (kept as its last token); null = the model config's <c>eos_token_id</c>, empty = none.</summary>
    public IReadOnlyList<int>? EosTokenIds { get; init; }

    /// <summary>
    /// Texts that end a sequence once the decoded continuation contains one (<c>stop_strings</c>); the token that completes
    /// it is kept. Needs a decoder (the tokenizer overload or a decode function).
    /// </summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (MaxNewTokens < 0) throw new ArgumentOutOfRangeException(nameof(MaxNewTokens), MaxNewTokens, "must be ≥ 0");
        if (!(Temperature > 0) || float.IsInfinity(Temperature)) throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "must be a positive finite number");
        if (TopK < 0) throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "must be ≥ 0 (0 disables top-k)");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "must be in (0, 1]");
        if (!(RepetitionPenalty > 0) || float.IsInfinity(RepetitionPenalty)) throw new ArgumentOutOfRangeException(nameof(RepetitionPenalty), RepetitionPenalty, "must be a positive finite number");
        if (StopStrings.Any(string.IsNullOrEmpty)) throw new ArgumentOutOfRangeException(nameof(StopStrings), "stop strings must be non-empty");
    }
}

/// <summary>Why a sequence stopped.</summary>
public enum GenerationStopReason
{
    /// <summary><see cref="GenerationOptions.MaxNewTokens"/> tokens were generated.</summary>
    MaxNewTokens,

    /// <summary>An end-of-sequence token was generated (it is the last token).</summary>
    EndOfSequence,

    /// <summary>The decoded continuation contains a stop string.</summary>
    StopString,
}

/// <summary>The continuation of one prompt.</summary>
/// <param name="TokenIds">Generated ids, without the prompt (an EOS or stop-string token included).</param>
/// <param name="StopReason">Why generation stopped.</param>
/// <param name="Text">The decoded continuation when a decoder was given, else null.</param>
public sealed record GenerationResult(IReadOnlyList<int> TokenIds, GenerationStopReason StopReason, string? Text);
