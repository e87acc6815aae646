using System.Text;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// The BPE model of a SentencePiece tokenizer.model, with SentencePiece's own semantics: the normalised text is split
/// into characters (user-defined symbols stay whole), then the adjacent pair whose concatenation is the
/// highest-scoring piece is merged (ties: leftmost) until no pair is a piece; pieces of type UNUSED are split back;
/// unknown pieces become UTF-8 byte pieces &lt;0xNN&gt; when byte_fallback is on, or fuse into one &lt;unk&gt; otherwise.
/// </summary>
/// <remarks>
/// Merging runs on a linked list of symbols with a binary heap of candidate pairs (O(n log n) per sentence; stale heap
/// entries are recognised by length, as in sentencepiece's bpe_model.cc). Pieces are looked up by span, and the
/// per-thread scratch arrays are reused, so encoding a sentence allocates only its output.
/// </remarks>
internal sealed class SentencePieceBpeModel
{
    private sealed class Scratch
    {
        public int[] Start = new int[256];
        public int[] Length = new int[256];
        public int[] Prev = new int[256];
        public int[] Next = new int[256];
        public bool[] Freeze = new bool[256];
        public readonly PriorityQueue<(int Left, int Right, int Size), (float Score, int Left)> Agenda = new(PairOrder.Instance);
        public readonly Dictionary<string, int> UnusedSplits = new(StringComparer.Ordinal);
        public readonly byte[] Utf8 = new byte[64];

        public void EnsureCapacity(int n)
        {
            if (Start.Length >= n) return;
            int size = Math.Max(n, Start.Length * 2);
            Array.Resize(ref Start, size);
            Array.Resize(ref Length, size);
            Array.Resize(ref Prev, size);
            Array.Resize(ref Next, size);
            Array.Resize(ref Freeze, size);
        }
    }

    /// <summary>Higher score first; equal scores: leftmost first.</summary>
    private sealed class PairOrder : IComparer<(float Score, int Left)>
    {
        public static readonly PairOrder Instance = new();

        public int Compare((float Score, int Left) x, (float Score, int Left) y) =>
            x.Score != y.Score ? y.Score.CompareTo(x.Score) : x.Left.CompareTo(y.Left);
    }

    [ThreadStatic]
    private static Scratch? t_scratch;

    private readonly SentencePieceEntry[] _pieces;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _mergeable;   // NORMAL, USER_DEFINED, UNUSED
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _reserved;    // CONTROL, UNKNOWN, BYTE
    private readonly UserDefinedSymbols? _userDefined;
    private readonly int[] _byteIds = new int[256];
    private readonly bool _byteFallback;

    public SentencePieceBpeModel(SentencePieceModelProto proto, string sourceName)
    {
        _pieces = [.. proto.Pieces];
        _byteFallback = proto.ByteFallback;
        var mergeable = new Dictionary<string, int>(StringComparer.Ordinal);
        var reserved = new Dictionary<string, int>(StringComparer.Ordinal);
        var userDefined = new List<string>();
        Array.Fill(_byteIds, -1);
        UnknownId = -1;
        for (int id = 0; id < _pieces.Length; id++)
        {
            var (piece, _, type) = _pieces[id];
            string field = $"ModelProto.pieces[{id}]";
            if (piece.Length == 0) throw new TokenizerFormatException(sourceName, field, "empty piece");
            bool normal = type is SentencePieceType.Normal or SentencePieceType.UserDefined or SentencePieceType.Unused;
            if (!(normal ? mergeable : reserved).TryAdd(piece, id))
            {
                throw new TokenizerFormatException(sourceName, field, $"piece '{TokenVocabulary.Shorten(piece)}' is already defined");
            }
            if (type == SentencePieceType.UserDefined) userDefined.Add(piece);
            if (type == SentencePieceType.Unknown)
            {
                if (UnknownId >= 0) throw new TokenizerFormatException(sourceName, field, "a second UNKNOWN piece");
                UnknownId = id;
            }
            if (type == SentencePieceType.Byte)
            {
                if (!_byteFallback) throw new TokenizerFormatException(sourceName, field, "byte piece found although byte_fallback is false");
                int value = ParseBytePiece(piece);
                if (value < 0) throw new TokenizerFormatException(sourceName, field, $"byte piece '{piece}' is not of the form <0xNN>");
                _byteIds[value] = id;
            }
        }
        if (UnknownId < 0) throw new TokenizerFormatException(sourceName, "ModelProto.pieces", "no piece of type UNKNOWN");
        _mergeable = mergeable.GetAlternateLookup<ReadOnlySpan<char>>();
        _reserved = reserved.GetAlternateLookup<ReadOnlySpan<char>>();
        _userDefined = userDefined.Count > 0 ? new UserDefinedSymbols(userDefined) : null;
    }

    public int UnknownId { get; }

    public SentencePieceType TypeOf(int id) => _pieces[id].Type;

    public int PieceCount => _pieces.Length;

    public string PieceOf(int id) => _pieces[id].Piece;

    /// <summary>Byte value of a &lt;0xNN&gt; piece id, or -1.</summary>
    public int ByteValue(int id) => _pieces[id].Type == SentencePieceType.Byte ? ParseBytePiece(_pieces[id].Piece) : -1;

    public UserDefinedSymbols? UserDefined => _userDefined;

    /// <summary>"&lt;0x41&gt;" → 0x41; anything else → -1.</summary>
    public static int ParseBytePiece(ReadOnlySpan<char> piece)
    {
        if (piece.Length != 6 || !piece.StartsWith("<0x", StringComparison.Ordinal) || piece[5] != '>') return -1;
        return int.TryParse(piece.Slice(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out int v) ? v : -1;
    }

    /// <summary>Encodes normalised text (already "▁"-escaped), mapping token spans back through <paramref name="text"/>.</summary>
    public void Encode(NormalizedText text, TokenCollector sink)
    {
        var chars = text.Chars;
        if (chars.IsEmpty) return;
        var s = t_scratch ??= new Scratch();
        s.EnsureCapacity(chars.Length);

        int count = 0;
        for (int position = 0; position < chars.Length; count++)
        {
            int length = _userDefined?.LongestMatch(chars[position..]) ?? 0;
            s.Freeze[count] = length > 0;
            if (length == 0) length = char.IsHighSurrogate(chars[position]) && position + 1 < chars.Length && char.IsLowSurrogate(chars[position + 1]) ? 2 : 1;
            s.Start[count] = position;
            s.Length[count] = length;
            s.Prev[count] = count - 1;
            position += length;
            s.Next[count] = position < chars.Length ? count + 1 : -1;
        }

        var agenda = s.Agenda;
        agenda.Clear();
        s.UnusedSplits.Clear();
        for (int i = 1; i < count; i++) MaybeAddPair(chars, s, i - 1, i);
        while (agenda.TryDequeue(out var top, out _))
        {
            int left = top.Left, right = top.Right;
            if (s.Length[left] == 0 || s.Length[right] == 0 || s.Length[left] + s.Length[right] != top.Size) continue;
            s.Length[left] += s.Length[right];
            s.Length[right] = 0;
            s.Next[left] = s.Next[right];
            if (s.Next[right] >= 0) s.Prev[s.Next[right]] = left;
            MaybeAddPair(chars, s, s.Prev[left], left);
            MaybeAddPair(chars, s, left, s.Next[left]);
        }

        bool previousUnknown = false;
        for (int index = 0; index != -1; index = s.Next[index])
        {
            Resegment(text, s, s.Start[index], s.Length[index], sink, ref previousUnknown);
        }
    }

    private void MaybeAddPair(ReadOnlySpan<char> chars, Scratch s, int left, int right)
    {
        if (left < 0 || right < 0 || s.Freeze[left] || s.Freeze[right]) return;
        int size = s.Length[left] + s.Length[right];
        var merged = chars.Slice(s.Start[left], size);
        if (!_mergeable.TryGetValue(merged, out int id)) return;
        s.Agenda.Enqueue((left, right, size), (_pieces[id].Score, left));
        if (_pieces[id].Type == SentencePieceType.Unused) s.UnusedSplits[merged.ToString()] = s.Length[left];
    }

    /// <summary>Emits a final symbol, splitting UNUSED pieces back into the pair they were merged from.</summary>
    private void Resegment(NormalizedText text, Scratch s, int start, int length, TokenCollector sink, ref bool previousUnknown)
    {
        var piece = text.Chars.Slice(start, length);
        int id = PieceToId(piece);
        if (_pieces[id].Type == SentencePieceType.Unused && s.UnusedSplits.TryGetValue(piece.ToString(), out int leftLength))
        {
            Resegment(text, s, start, leftLength, sink, ref previousUnknown);
            Resegment(text, s, start + leftLength, length - leftLength, sink, ref previousUnknown);
            return;
        }
        bool unknown = id == UnknownId;
        var (originalStart, originalLength) = sink.WantOffsets ? text.MapToOriginal(start, start + length) : (0, 0);
        if (unknown && _byteFallback)
        {
            EmitBytes(piece, s.Utf8, originalStart, originalLength, sink);
        }
        else if (unknown && previousUnknown)
        {
            sink.ExtendLast(originalStart + originalLength);
        }
        else
        {
            sink.Add(id, originalStart, originalLength);
        }
        previousUnknown = unknown;
    }

    /// <summary>
    /// One &lt;0xNN&gt; piece per UTF-8 byte, each with the range of the characters they spell (sentencepiece gives the
    /// range to the last byte only; sharing it keeps the bytes of one character together when a caller cuts by offsets).
    /// </summary>
    private void EmitBytes(ReadOnlySpan<char> piece, byte[] buffer, int originalStart, int originalLength, TokenCollector sink)
    {
        var utf8 = piece.Length * 3 <= buffer.Length ? buffer : new byte[piece.Length * 3];
        int count = Encoding.UTF8.GetBytes(piece, utf8);
        for (int i = 0; i < count; i++)
        {
            int id = _byteIds[utf8[i]];
            sink.Add(id < 0 ? UnknownId : id, originalStart, originalLength);
        }
    }

    /// <summary>SentencePiece's PieceToId: reserved pieces first, then mergeable ones, else the unknown id.</summary>
    private int PieceToId(ReadOnlySpan<char> piece) =>
        _reserved.TryGetValue(piece, out int id) || _mergeable.TryGetValue(piece, out id) ? id : UnknownId;
}
