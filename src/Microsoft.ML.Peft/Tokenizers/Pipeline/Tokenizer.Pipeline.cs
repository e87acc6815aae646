namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>The model-input pipeline: special-token templates, pairs, truncation, padding, attention masks.</summary>
public abstract partial class Tokenizer
{
    /// <summary>
    /// Encodes one text (or a text pair) into model inputs: truncated to <see cref="EncodeOptions.MaxLength"/>,
    /// wrapped in the special tokens of <see cref="PostProcessor"/>, and padded when
    /// <see cref="EncodeOptions.Padding"/> is <see cref="PaddingStrategy.MaxLength"/>.
    /// </summary>
    public TokenizedInput Encode(string text, string? textPair = null, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        options ??= new EncodeOptions();
        ValidateOptions(options, textPair is not null, nameof(options));
        var row = EncodeRow(text, textPair, options);
        int length = row.Ids.Length;
        if (options.Padding == PaddingStrategy.MaxLength) length = Math.Max(length, options.MaxLength!.Value);
        if (options.Padding != PaddingStrategy.DoNotPad) length = RoundUp(length, options.PadToMultipleOf);
        int[] ids = new int[length], mask = new int[length], types = new int[length], special = new int[length];
        int padId = length > row.Ids.Length ? ResolvePaddingId(options) : 0;
        WriteRow(row, options.PaddingSide, padId, ids, mask, types, special);
        return new TokenizedInput(ids, mask, types, special);
    }

    /// <summary>
    /// Encodes a batch of texts (and, for sentence-pair tasks, the matching second texts) into row-major
    /// [batch, sequence] arrays of ids, attention mask and token type ids: what a classification trainer feeds a model.
    /// </summary>
    /// <exception cref="ArgumentException">A text is null, the pair list has another length, the options contradict
    /// each other, a row cannot be truncated as asked, or a batch would be ragged without padding.</exception>
    /// <exception cref="InvalidOperationException">Padding is needed but neither the tokenizer nor the options have a padding id.</exception>
    public TokenizedBatch EncodeBatch(IReadOnlyList<string> texts, IReadOnlyList<string>? textPairs = null, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        options ??= new EncodeOptions();
        if (textPairs is not null && textPairs.Count != texts.Count)
        {
            throw new ArgumentException($"textPairs has {textPairs.Count} entries but texts has {texts.Count}", nameof(textPairs));
        }
        for (int i = 0; i < texts.Count; i++)
        {
            if (texts[i] is null) throw new ArgumentException($"texts[{i}] is null", nameof(texts));
            if (textPairs is not null && textPairs[i] is null) throw new ArgumentException($"textPairs[{i}] is null", nameof(textPairs));
        }
        ValidateOptions(options, textPairs is not null, nameof(options));

        var rows = new EncodedRow[texts.Count];
        int longest = 0;
        for (int i = 0; i < rows.Length; i++)
        {
            rows[i] = EncodeRow(texts[i], textPairs?[i], options, i);
            longest = Math.Max(longest, rows[i].Ids.Length);
        }

        int sequenceLength = options.Padding == PaddingStrategy.MaxLength ? options.MaxLength!.Value : longest;
        if (options.Padding != PaddingStrategy.DoNotPad) sequenceLength = RoundUp(sequenceLength, options.PadToMultipleOf);
        bool needsPadding = false;
        for (int i = 0; i < rows.Length; i++)
        {
            int length = rows[i].Ids.Length;
            if (length > sequenceLength)
            {
                throw new ArgumentException($"row {i} has {length} tokens, more than MaxLength {sequenceLength}; enable truncation", nameof(options));
            }
            if (length < sequenceLength)
            {
                if (options.Padding == PaddingStrategy.DoNotPad)
                {
                    throw new ArgumentException($"row {i} has {length} tokens but row lengths differ (longest {longest}); a batch needs padding", nameof(options));
                }
                needsPadding = true;
            }
        }
        int padId = needsPadding ? ResolvePaddingId(options) : 0;

        int total = checked(rows.Length * sequenceLength);
        int[] ids = new int[total], mask = new int[total], types = new int[total], lengths = new int[rows.Length];
        var unusedSpecial = new int[sequenceLength];
        for (int i = 0; i < rows.Length; i++)
        {
            var range = new Range(i * sequenceLength, (i + 1) * sequenceLength);
            WriteRow(rows[i], options.PaddingSide, padId, ids.AsSpan(range), mask.AsSpan(range), types.AsSpan(range), unusedSpecial);
            lengths[i] = rows[i].Ids.Length;
        }
        return new TokenizedBatch(rows.Length, sequenceLength, ids, mask, types, lengths);
    }

    /// <summary>Ids, type ids and special mask of one row after truncation and the template, before padding.</summary>
    private readonly record struct EncodedRow(int[] Ids, int[] TypeIds, int[] SpecialMask);

    private void ValidateOptions(EncodeOptions options, bool isPair, string parameterName)
    {
        if (options.MaxLength is int max)
        {
            if (max <= 0) throw new ArgumentException($"MaxLength must be positive, got {max}", parameterName);
            int specials = options.AddSpecialTokens ? PostProcessor?.CountSpecialTokens(isPair) ?? 0 : 0;
            if (options.Truncation != TruncationStrategy.DoNotTruncate && max < specials)
            {
                throw new ArgumentException($"MaxLength {max} leaves no room: the template adds {specials} special tokens", parameterName);
            }
        }
        else if (options.Padding == PaddingStrategy.MaxLength)
        {
            throw new ArgumentException("Padding = MaxLength needs MaxLength", parameterName);
        }
        if (options.Truncation == TruncationStrategy.OnlySecond && options.MaxLength is not null && !isPair)
        {
            throw new ArgumentException("Truncation = OnlySecond needs text pairs", parameterName);
        }
        if (options.PadToMultipleOf is int multiple && multiple <= 0)
        {
            throw new ArgumentException($"PadToMultipleOf must be positive, got {multiple}", parameterName);
        }
    }

    private int ResolvePaddingId(EncodeOptions options) =>
        options.PaddingTokenId ?? PaddingTokenId
        ?? throw new InvalidOperationException("This tokenizer has no padding token; set EncodeOptions.PaddingTokenId (for example to the EOS or UNK id).");

    private EncodedRow EncodeRow(string text, string? textPair, EncodeOptions options, int row = 0)
    {
        int[] first = EncodeIdsArray(text);
        int[] second = textPair is null ? [] : EncodeIdsArray(textPair);
        bool isPair = textPair is not null;
        int specials = options.AddSpecialTokens ? PostProcessor?.CountSpecialTokens(isPair) ?? 0 : 0;
        if (options.MaxLength is int max && options.Truncation != TruncationStrategy.DoNotTruncate)
        {
            var (keepFirst, keepSecond) = TruncatedLengths(first.Length, second.Length, isPair, max - specials, options.Truncation, row);
            first = Keep(first, keepFirst, options.TruncationSide);
            second = Keep(second, keepSecond, options.TruncationSide);
        }

        var ids = new List<int>(first.Length + second.Length + specials);
        var types = new List<int>(ids.Capacity);
        var special = new List<int>(ids.Capacity);
        if (PostProcessor is { } template)
        {
            template.Apply(first, second, isPair, options.AddSpecialTokens, ids, types, special);
        }
        else
        {
            foreach (int id in first) { ids.Add(id); types.Add(0); special.Add(0); }
            foreach (int id in second) { ids.Add(id); types.Add(1); special.Add(0); }
        }
        return new EncodedRow([.. ids], [.. types], [.. special]);
    }

    /// <summary>
    /// How many tokens of each sequence survive a budget of <paramref name="budget"/> non-special tokens, following the
    /// Hugging Face tokenizers rules: longest_first keeps the shorter sequence whole when the longer one alone can
    /// absorb the cut, otherwise gives each half the budget (the longer one gets the odd token).
    /// </summary>
    internal static (int First, int Second) TruncatedLengths(int first, int second, bool isPair, int budget, TruncationStrategy strategy, int row = 0)
    {
        if (first + second <= budget) return (first, second);
        int toRemove = first + second - budget;
        switch (strategy)
        {
            case TruncationStrategy.LongestFirst when !isPair:
                return (budget, 0);
            case TruncationStrategy.LongestFirst:
            {
                bool swap = first > second;
                int shorter = swap ? second : first, longer;
                longer = shorter > budget ? shorter : Math.Max(shorter, budget - shorter);
                if (shorter + longer > budget)
                {
                    shorter = budget / 2;
                    longer = shorter + budget % 2;
                }
                return swap ? (longer, shorter) : (shorter, longer);
            }
            case TruncationStrategy.OnlyFirst:
                if (first > toRemove) return (first - toRemove, second);
                throw new ArgumentException($"row {row}: the first sequence ({first} tokens) is too short to remove {toRemove} tokens (OnlyFirst)");
            case TruncationStrategy.OnlySecond:
                if (second > toRemove) return (first, second - toRemove);
                throw new ArgumentException($"row {row}: the second sequence ({second} tokens) is too short to remove {toRemove} tokens (OnlySecond)");
            default:
                return (first, second);
        }
    }

    private static int[] Keep(int[] ids, int count, TruncationSide side) =>
        count >= ids.Length ? ids : side == TruncationSide.Right ? ids[..count] : ids[^count..];

    private static int RoundUp(int length, int? multiple) =>
        multiple is int m && length % m != 0 ? checked(length + m - length % m) : length;

    private int[] EncodeIdsArray(string text)
    {
        var sink = RentCollector(wantOffsets: false);
        EncodeCore(text, true, true, sink, null);
        return [.. sink.Ids];
    }

    private static void WriteRow(EncodedRow row, PaddingSide side, int padId, Span<int> ids, Span<int> mask, Span<int> types, Span<int> special)
    {
        int padding = ids.Length - row.Ids.Length;
        int start = side == PaddingSide.Left ? padding : 0;
        int padStart = side == PaddingSide.Left ? 0 : row.Ids.Length;
        row.Ids.CopyTo(ids[start..]);
        row.TypeIds.CopyTo(types[start..]);
        row.SpecialMask.CopyTo(special[start..]);
        mask.Slice(start, row.Ids.Length).Fill(1);
        ids.Slice(padStart, padding).Fill(padId);
        mask.Slice(padStart, padding).Clear();
        types.Slice(padStart, padding).Clear();
        special.Slice(padStart, padding).Fill(1);
    }
}
