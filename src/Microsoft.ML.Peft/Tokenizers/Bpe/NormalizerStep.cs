namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// One Hugging Face normaliser step that this library supports outside BERT: <c>Prepend</c> (add a string in front of
/// non-empty text) and <c>Replace</c> with a literal pattern. Llama-2-style tokenizer.json files use
/// Sequence[Prepend("▁"), Replace(" ", "▁")]. Steps rewrite one <see cref="NormalizedText"/> into another, keeping
/// for every output unit the original range it came from (inserted units get an empty range).
/// </summary>
internal abstract class NormalizerStep
{
    public abstract void Apply(NormalizedText input, NormalizedText output);

    /// <summary>Applies the non-null <paramref name="steps"/> to <paramref name="input"/>, one of the two per-thread buffers.</summary>
    public static NormalizedText RunOn(NormalizedText input, params NormalizerStep?[] steps)
    {
        var current = input;
        var other = ReferenceEquals(input, NormalizedText.PeekSecond()) ? NormalizedText.Rent() : NormalizedText.RentSecond();
        foreach (var step in steps)
        {
            if (step is null) continue;
            other.Clear();
            step.Apply(current, other);
            (current, other) = (other, current);
        }
        return current;
    }

    /// <summary>Applies <paramref name="steps"/> to <paramref name="segment"/>; returns the buffer holding the result.</summary>
    public static NormalizedText Run(IReadOnlyList<NormalizerStep> steps, ReadOnlySpan<char> segment, int offset)
    {
        var current = NormalizedText.Rent();
        for (int i = 0; i < segment.Length; i++) current.Append(segment[i], offset + i, offset + i + 1);
        if (steps.Count == 0) return current;
        var other = NormalizedText.RentSecond();
        foreach (var step in steps)
        {
            other.Clear();
            step.Apply(current, other);
            (current, other) = (other, current);
        }
        return current;
    }
}

/// <summary>Prepends a string unless the text is empty.</summary>
internal sealed class PrependStep(string prefix) : NormalizerStep
{
    public string Prefix { get; } = prefix;

    public override void Apply(NormalizedText input, NormalizedText output)
    {
        if (input.Length == 0) return;
        int at = input.OriginalStart(0);
        output.Append(Prefix.AsSpan(), at, at);
        for (int i = 0; i < input.Length; i++) output.Append(input.Chars[i], input.OriginalStart(i), input.OriginalEnd(i));
    }
}

/// <summary>Replaces every non-overlapping occurrence of a literal pattern, left to right.</summary>
internal sealed class ReplaceStep(string pattern, string content) : NormalizerStep
{
    public string Pattern { get; } = pattern;

    public string Content { get; } = content;

    public override void Apply(NormalizedText input, NormalizedText output)
    {
        var chars = input.Chars;
        int i = 0;
        while (i < chars.Length)
        {
            if (chars[i] == Pattern[0] && chars[i..].StartsWith(Pattern, StringComparison.Ordinal))
            {
                var (start, length) = input.MapToOriginal(i, i + Pattern.Length);
                output.Append(Content.AsSpan(), start, start + length);
                i += Pattern.Length;
                continue;
            }
            output.Append(chars[i], input.OriginalStart(i), input.OriginalEnd(i));
            i++;
        }
    }
}
