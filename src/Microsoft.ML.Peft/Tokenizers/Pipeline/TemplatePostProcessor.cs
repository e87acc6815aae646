namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// One element of a special-token template: either fixed special-token ids, or sequence A / B of the input.
/// Every token it produces gets <see cref="TypeId"/> as its token type id.
/// </summary>
public sealed class TemplatePiece
{
    private TemplatePiece(int sequenceIndex, int[] specialIds, int typeId)
    {
        SequenceIndex = sequenceIndex;
        SpecialIds = specialIds;
        TypeId = typeId;
    }

    /// <summary>0 for sequence A, 1 for sequence B, -1 for a special-token piece.</summary>
    public int SequenceIndex { get; }

    /// <summary>The ids a special-token piece inserts (empty for sequence pieces).</summary>
    public IReadOnlyList<int> SpecialIds { get; }

    /// <summary>Token type id of every token this piece produces.</summary>
    public int TypeId { get; }

    /// <summary>A special-token piece.</summary>
    public static TemplatePiece Special(int typeId, params int[] ids) => new(-1, [.. ids], typeId);

    /// <summary>Sequence A (<paramref name="sequenceIndex"/> 0) or B (1).</summary>
    public static TemplatePiece Sequence(int sequenceIndex, int typeId)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sequenceIndex, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(sequenceIndex, 1);
        return new(sequenceIndex, [], typeId);
    }
}

/// <summary>
/// Adds a model's special tokens around one or two encoded sequences and assigns token type ids (the Hugging Face
/// <c>TemplateProcessing</c>, <c>BertProcessing</c> and <c>RobertaProcessing</c> post-processors).
/// </summary>
public sealed class TemplatePostProcessor
{
    /// <summary>Creates a template from its single-sequence and pair forms.</summary>
    public TemplatePostProcessor(IReadOnlyList<TemplatePiece> single, IReadOnlyList<TemplatePiece> pair)
    {
        ArgumentNullException.ThrowIfNull(single);
        ArgumentNullException.ThrowIfNull(pair);
        if (single.Count(p => p.SequenceIndex == 0) != 1 || single.Any(p => p.SequenceIndex == 1))
        {
            throw new ArgumentException("the single template must contain sequence A exactly once and no sequence B", nameof(single));
        }
        if (pair.Count(p => p.SequenceIndex == 0) != 1 || pair.Count(p => p.SequenceIndex == 1) != 1)
        {
            throw new ArgumentException("the pair template must contain sequences A and B exactly once each", nameof(pair));
        }
        Single = [.. single];
        Pair = [.. pair];
    }

    /// <summary>Template for one sequence.</summary>
    public IReadOnlyList<TemplatePiece> Single { get; }

    /// <summary>Template for a pair of sequences.</summary>
    public IReadOnlyList<TemplatePiece> Pair { get; }

    /// <summary>BERT: [CLS] A [SEP] (type 0), then B [SEP] (type 1).</summary>
    public static TemplatePostProcessor Bert(int classificationId, int separatorId) => new(
        [TemplatePiece.Special(0, classificationId), TemplatePiece.Sequence(0, 0), TemplatePiece.Special(0, separatorId)],
        [TemplatePiece.Special(0, classificationId), TemplatePiece.Sequence(0, 0), TemplatePiece.Special(0, separatorId),
         TemplatePiece.Sequence(1, 1), TemplatePiece.Special(1, separatorId)]);

    /// <summary>RoBERTa: &lt;s&gt; A &lt;/s&gt; and &lt;s&gt; A &lt;/s&gt;&lt;/s&gt; B &lt;/s&gt;, every type id 0.</summary>
    public static TemplatePostProcessor Roberta(int beginId, int endId) => new(
        [TemplatePiece.Special(0, beginId), TemplatePiece.Sequence(0, 0), TemplatePiece.Special(0, endId)],
        [TemplatePiece.Special(0, beginId), TemplatePiece.Sequence(0, 0), TemplatePiece.Special(0, endId),
         TemplatePiece.Special(0, endId), TemplatePiece.Sequence(1, 0), TemplatePiece.Special(0, endId)]);

    /// <summary>
    /// Llama (transformers' <c>add_bos_token</c>/<c>add_eos_token</c>): [BOS] A [EOS] with type 0, then
    /// [BOS] B [EOS] with type 1; a null id leaves that token out.
    /// </summary>
    public static TemplatePostProcessor BeginEnd(int? beginId, int? endId)
    {
        List<TemplatePiece> Part(int sequence)
        {
            var part = new List<TemplatePiece>();
            if (beginId is int b) part.Add(TemplatePiece.Special(sequence, b));
            part.Add(TemplatePiece.Sequence(sequence, sequence));
            if (endId is int e) part.Add(TemplatePiece.Special(sequence, e));
            return part;
        }
        return new TemplatePostProcessor(Part(0), [.. Part(0), .. Part(1)]);
    }

    /// <summary>How many special tokens the template adds.</summary>
    public int CountSpecialTokens(bool pair) => (pair ? Pair : Single).Sum(p => p.SpecialIds.Count);

    /// <summary>
    /// Appends the template applied to <paramref name="first"/> (and <paramref name="second"/> when
    /// <paramref name="isPair"/>) to the output lists; special pieces are skipped unless
    /// <paramref name="addSpecialTokens"/>, but the sequences still get the template's type ids.
    /// </summary>
    internal void Apply(ReadOnlySpan<int> first, ReadOnlySpan<int> second, bool isPair, bool addSpecialTokens,
        List<int> ids, List<int> typeIds, List<int> specialMask)
    {
        foreach (var piece in isPair ? Pair : Single)
        {
            if (piece.SequenceIndex < 0)
            {
                if (!addSpecialTokens) continue;
                foreach (int id in piece.SpecialIds)
                {
                    ids.Add(id);
                    typeIds.Add(piece.TypeId);
                    specialMask.Add(1);
                }
                continue;
            }
            foreach (int id in piece.SequenceIndex == 0 ? first : second)
            {
                ids.Add(id);
                typeIds.Add(piece.TypeId);
                specialMask.Add(0);
            }
        }
    }
}
