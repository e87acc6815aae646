using System.Text;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>How a Metaspace pre-tokenizer adds the leading "▁".</summary>
internal enum MetaspacePrepend
{
    Always,
    First,
    Never,
}

/// <summary>A Hugging Face Metaspace pre-tokenizer: spaces → <see cref="Replacement"/>, optional prefix, optional split.</summary>
internal sealed record MetaspaceSettings(char Replacement, MetaspacePrepend Prepend, bool Split);

/// <summary>
/// SentencePiece-style BPE with byte fallback (Llama 2, TinyLlama, Mistral, stories260K), loaded either from a
/// SentencePiece tokenizer.model (encoded exactly as the sentencepiece library does, honouring the model's normaliser
/// spec) or from a Hugging Face tokenizer.json (BPE model with byte_fallback and a Prepend/Replace normaliser or a
/// Metaspace pre-tokenizer, encoded as the tokenizers library does).
/// </summary>
/// <remarks>
/// The two sources can disagree on the same model: SentencePiece's default normaliser removes leading, trailing and
/// repeated spaces (remove_extra_whitespaces) while the Llama tokenizer.json normaliser keeps them, and the two
/// decoders treat leading spaces differently. Each loader reproduces its own library.
/// </remarks>
public sealed class SentencePieceBpeTokenizer : Tokenizer
{
    private const char SpaceSymbol = '\u2581';

    [ThreadStatic]
    private static WordTokens? t_word;

    private readonly SentencePieceBpeModel? _spm;
    private readonly SentencePieceNormalizer? _spmNormalizer;
    private readonly string _unknownSurface = string.Empty;

    private readonly BpeModel? _hf;
    private readonly IReadOnlyList<NormalizerStep> _normalizer = [];
    private readonly MetaspaceSettings? _metaspace;
    private readonly IReadOnlyList<DecoderStep> _decoder = [];

    private SentencePieceBpeTokenizer(SentencePieceModelProto proto, SentencePieceBpeModel model, TokenVocabulary vocabulary,
        IReadOnlyList<AddedToken> addedTokens, string sourceName)
        : base(vocabulary, addedTokens, sourceName)
    {
        _spm = model;
        var charsMap = proto.PrecompiledCharsMap.Length > 0 ? PrecompiledCharsMap.Parse(proto.PrecompiledCharsMap, sourceName) : null;
        _spmNormalizer = new SentencePieceNormalizer(charsMap, model.UserDefined, proto.AddDummyPrefix, proto.RemoveExtraWhitespaces, proto.EscapeWhitespaces);
        _unknownSurface = proto.UnknownSurface;
        ByteFallback = proto.ByteFallback;
        AddDummyPrefix = proto.AddDummyPrefix;
        RemoveExtraWhitespaces = proto.RemoveExtraWhitespaces;
        for (int id = 0; id < model.PieceCount; id++)
        {
            if (model.TypeOf(id) is SentencePieceType.Control or SentencePieceType.Unknown) MarkSpecial(id);
        }
    }

    private SentencePieceBpeTokenizer(BpeModel model, IReadOnlyList<AddedToken> addedTokens, IReadOnlyList<NormalizerStep> normalizer,
        MetaspaceSettings? metaspace, IReadOnlyList<DecoderStep> decoder, string sourceName)
        : base(model.Vocabulary, addedTokens, sourceName)
    {
        _hf = model;
        _normalizer = normalizer;
        _metaspace = metaspace;
        _decoder = decoder;
        ByteFallback = model.ByteFallback;
        AddDummyPrefix = metaspace is { Prepend: not MetaspacePrepend.Never } || normalizer.OfType<PrependStep>().Any();
        RemoveExtraWhitespaces = false;
    }

    /// <summary>Whether characters missing from the vocabulary become &lt;0xNN&gt; byte tokens.</summary>
    public bool ByteFallback { get; }

    /// <summary>Whether a "▁" is put in front of the text.</summary>
    public bool AddDummyPrefix { get; }

    /// <summary>Whether leading, trailing and repeated spaces are dropped (SentencePiece's remove_extra_whitespaces).</summary>
    public bool RemoveExtraWhitespaces { get; }

    /// <summary>Loads a SentencePiece BPE tokenizer.model.</summary>
    /// <param name="modelFilePath">The tokenizer.model file.</param>
    /// <param name="addBeginningOfSentence">Whether <see cref="Tokenizer.Encode"/> puts &lt;s&gt; first (Llama does).</param>
    /// <param name="addEndOfSentence">Whether <see cref="Tokenizer.Encode"/> puts &lt;/s&gt; last.</param>
    /// <param name="specialTokens">Extra tokens (content → id) to match verbatim in the text; SentencePiece itself matches none.</param>
    public static SentencePieceBpeTokenizer Create(string modelFilePath, bool addBeginningOfSentence = true, bool addEndOfSentence = false,
        IReadOnlyDictionary<string, int>? specialTokens = null) =>
        Create(TokenizerFiles.ReadAllBytes(modelFilePath), modelFilePath, addBeginningOfSentence, addEndOfSentence, specialTokens);

    /// <inheritdoc cref="Create(string, bool, bool, IReadOnlyDictionary{string, int}?)"/>
    public static SentencePieceBpeTokenizer Create(Stream modelStream, bool addBeginningOfSentence = true, bool addEndOfSentence = false,
        IReadOnlyDictionary<string, int>? specialTokens = null) =>
        Create(TokenizerFiles.ReadAllBytes(modelStream), "tokenizer.model", addBeginningOfSentence, addEndOfSentence, specialTokens);

    internal static SentencePieceBpeTokenizer Create(byte[] bytes, string sourceName, bool addBeginningOfSentence, bool addEndOfSentence,
        IReadOnlyDictionary<string, int>? specialTokens)
    {
        var proto = SentencePieceModelProto.Parse(bytes, sourceName);
        if (proto.ModelType != SentencePieceModelProto.ModelTypeBpe)
        {
            string name = proto.ModelType switch { 1 => "UNIGRAM", 3 => "WORD", 4 => "CHAR", _ => proto.ModelType.ToString(System.Globalization.CultureInfo.InvariantCulture) };
            throw new TokenizerFormatException(sourceName, "ModelProto.trainer_spec.model_type", $"model type {name} is not supported (only BPE)");
        }
        if (proto.TreatWhitespaceAsSuffix)
        {
            throw new TokenizerFormatException(sourceName, "ModelProto.trainer_spec.treat_whitespace_as_suffix", "whitespace-as-suffix models are not supported");
        }
        if (proto.Pieces.Count == 0) throw new TokenizerFormatException(sourceName, "ModelProto.pieces", "the model has no pieces");
        var model = new SentencePieceBpeModel(proto, sourceName);
        var vocabulary = TokenVocabulary.Build(proto.Pieces.Select((p, i) => new KeyValuePair<string, int>(p.Piece, i)).ToList(), sourceName, "ModelProto.pieces");
        var added = (specialTokens ?? new Dictionary<string, int>()).Select(p => new AddedToken(p.Key, p.Value, Special: true)).ToList();
        var tokenizer = new SentencePieceBpeTokenizer(proto, model, vocabulary, added, sourceName);
        tokenizer.SetSpecialToken(SpecialTokenRole.Unknown, proto.Pieces[model.UnknownId].Piece, sourceName, "unk_piece");
        tokenizer.SetControlRole(SpecialTokenRole.BeginningOfSentence, proto.BeginningOfSentencePiece, model, sourceName);
        tokenizer.SetControlRole(SpecialTokenRole.EndOfSentence, proto.EndOfSentencePiece, model, sourceName);
        tokenizer.SetControlRole(SpecialTokenRole.Padding, proto.PaddingPiece, model, sourceName);
        tokenizer.PostProcessor = TemplatePostProcessor.BeginEnd(
            addBeginningOfSentence ? tokenizer.BeginningOfSentenceTokenId : null,
            addEndOfSentence ? tokenizer.EndOfSentenceTokenId : null);
        return tokenizer;
    }

    /// <summary>Builds the tokenizer from parts read out of a tokenizer.json.</summary>
    internal static SentencePieceBpeTokenizer Create(BpeModel model, IReadOnlyList<AddedToken> addedTokens, IReadOnlyList<NormalizerStep> normalizer,
        MetaspaceSettings? metaspace, IReadOnlyList<DecoderStep> decoder, string sourceName) =>
        new(model, addedTokens, normalizer, metaspace, decoder, sourceName);

    /// <summary>sentencepiece's bos_id()/eos_id()/pad_id(): the piece counts only when it is a CONTROL piece.</summary>
    private void SetControlRole(SpecialTokenRole role, string piece, SentencePieceBpeModel model, string sourceName)
    {
        if (TokenToId(piece) is int id && id < model.PieceCount && model.TypeOf(id) == SentencePieceType.Control)
        {
            SetSpecialToken(role, piece, sourceName, role.ToString());
        }
    }

    private protected override void EncodeSegment(ReadOnlySpan<char> segment, int offset, bool considerPreTokenization, bool considerNormalization,
        TokenCollector sink, StringBuilder? normalized)
    {
        if (_spm is not null)
        {
            var text = NormalizedText.Rent();
            if (considerNormalization) _spmNormalizer!.Normalize(segment, offset, text);
            else for (int i = 0; i < segment.Length; i++) text.Append(segment[i], offset + i, offset + i + 1);
            normalized?.Append(text.Chars);
            _spm.Encode(text, sink);
            return;
        }

        var steps = considerNormalization ? _normalizer : [];
        var result = NormalizerStep.Run(steps, segment, offset);
        if (_metaspace is not null)
        {
            bool prepend = _metaspace.Prepend == MetaspacePrepend.Always || (_metaspace.Prepend == MetaspacePrepend.First && offset == 0);
            result = NormalizerStep.RunOn(result, new ReplaceStep(" ", _metaspace.Replacement.ToString()),
                prepend ? new MetaspacePrependStep(_metaspace.Replacement) : null);
        }
        normalized?.Append(result.Chars);
        var word = t_word ??= new WordTokens();
        var chars = result.Chars;
        int wordStart = 0;
        bool split = considerPreTokenization && _metaspace is { Split: true };
        for (int i = 1; i <= chars.Length; i++)
        {
            if (i < chars.Length && !(split && chars[i] == _metaspace!.Replacement)) continue;
            _hf!.EncodeWord(chars[wordStart..i], word);
            for (int t = 0; t < word.Count; t++)
            {
                int s = wordStart + word.Starts[t];
                var (start, length) = sink.WantOffsets ? result.MapToOriginal(s, s + word.Lengths[t]) : (0, 0);
                sink.Add(word.Ids[t], start, length);
            }
            wordStart = i;
        }
    }

    private protected override string DecodeCore(ReadOnlySpan<int> ids, bool skipSpecialTokens)
    {
        if (_spm is not null)
        {
            return SentencePieceDecoder.Decode(ids, _spm, FullVocabulary, _unknownSurface, AddDummyPrefix || RemoveExtraWhitespaces,
                RemoveExtraWhitespaces, skipSpecialTokens ? IsSpecialToken : null);
        }
        var tokens = new List<string>(ids.Length);
        foreach (int id in ids)
        {
            if (skipSpecialTokens && IsSpecialToken(id)) continue;
            tokens.Add(FullVocabulary.GetToken(id)!);
        }
        return _decoder.Count == 0 ? string.Join(' ', tokens) : DecoderStep.Decode(_decoder, tokens);
    }

    /// <summary>Metaspace's prefix: a "▁" unless the text already starts with one.</summary>
    private sealed class MetaspacePrependStep(char replacement) : NormalizerStep
    {
        public override void Apply(NormalizedText input, NormalizedText output)
        {
            if (input.Length > 0 && input.Chars[0] != replacement)
            {
                int at = input.OriginalStart(0);
                output.Append(replacement, at, at);
            }
            for (int i = 0; i < input.Length; i++) output.Append(input.Chars[i], input.OriginalStart(i), input.OriginalEnd(i));
        }
    }
}
