using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.InstructionTuning;

/// <summary>
/// A tokenized training sequence: <see cref="InputIds"/> and <see cref="Labels"/> of equal length, where a label is the
/// token id itself on response tokens (response + EOS) and <see cref="InstructionEncoder.IgnoreIndex"/> elsewhere
/// (prompt tokens, padding). The causal-LM loss shifts them (token t is predicted from tokens &lt; t).
/// </summary>
/// <param name="InputIds">Token ids.</param>
/// <param name="Labels">Target ids or −100.</param>
public sealed record CausalLmSequence(int[] InputIds, int[] Labels)
{
    /// <summary>Number of tokens.</summary>
    public int Length => InputIds.Length;

    /// <summary>Labels that count in the loss (ignoring the first position, which no token predicts).</summary>
    public int SupervisedTokens
    {
        get
        {
            int n = 0;
            for (int i = 1; i < Labels.Length; i++)
            {
                if (Labels[i] != InstructionEncoder.IgnoreIndex) n++;
            }
            return n;
        }
    }
}

/// <summary>
/// Tokenizes instruction records for causal-LM fine-tuning the way Stanford Alpaca's training script does: the prompt
/// (template applied) is encoded with the tokenizer's special tokens (e.g. Llama's BOS), the response separately
/// without them, followed by EOS; labels are −100 on every prompt token, so the loss covers only the response and
/// its EOS. Encoding the two parts separately makes the prompt ids exactly what generation later feeds the model.
/// </summary>
/// <remarks>
/// Sequences longer than <see cref="MaxLength"/> are cut at the end (transformers' right truncation); a record
/// left without any response token cannot teach anything and is reported by <see cref="Encode"/> returning null.
/// </remarks>
public sealed class InstructionEncoder
{
    /// <summary>The label of positions the loss ignores (PyTorch's and transformers' −100).</summary>
    public const int IgnoreIndex = -100;

    private static readonly EncodeOptions PromptOptions = new() { Padding = PaddingStrategy.DoNotPad, Truncation = TruncationStrategy.DoNotTruncate };

    /// <summary>An encoder.</summary>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="template">How prompts are written.</param>
    /// <param name="maxLength">Most tokens per sequence (prompt + response + EOS).</param>
    /// <param name="endOfSequenceId">The id appended after each response (the model's EOS).</param>
    public InstructionEncoder(Tokenizer tokenizer, PromptTemplate template, int maxLength, int endOfSequenceId)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(template);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        Tokenizer = tokenizer;
        Template = template;
        MaxLength = maxLength;
        EndOfSequenceId = endOfSequenceId;
    }

    /// <summary>The tokenizer.</summary>
    public Tokenizer Tokenizer { get; }

    /// <summary>The prompt template.</summary>
    public PromptTemplate Template { get; }

    /// <summary>Most tokens per sequence.</summary>
    public int MaxLength { get; }

    /// <summary>The EOS id ending every response.</summary>
    public int EndOfSequenceId { get; }

    /// <summary>The prompt ids generation starts from (special tokens included, never truncated).</summary>
    public int[] EncodePrompt(string? instruction, string? input) =>
        [.. Tokenizer.Encode(Template.Format(instruction, input), options: PromptOptions).InputIds];

    /// <summary>
    /// Ids = prompt ++ response ++ [EOS], labels = [−100 × prompt] ++ response ++ [EOS], cut to <see cref="MaxLength"/>.
    /// Returns null when truncation leaves no response token; <paramref name="truncated"/> says whether anything was cut.
    /// </summary>
    public CausalLmSequence? Encode(InstructionExample example, out bool truncated)
    {
        ArgumentNullException.ThrowIfNull(example);
        var prompt = EncodePrompt(example.Instruction, example.Input);
        var response = Tokenizer.EncodeToIds(example.Output ?? "");
        int full = prompt.Length + response.Count + 1;
        int length = Math.Min(full, MaxLength);
        truncated = full > MaxLength;
        if (length <= prompt.Length) return null;
        var ids = new int[length];
        var labels = new int[length];
        for (int i = 0; i < length; i++)
        {
            int id = i < prompt.Length ? prompt[i] : i - prompt.Length < response.Count ? response[i - prompt.Length] : EndOfSequenceId;
            ids[i] = id;
            labels[i] = i < prompt.Length ? IgnoreIndex : id;
        }
        return new CausalLmSequence(ids, labels);
    }
}
