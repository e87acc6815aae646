namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// The Hugging Face <c>BPE</c> model (tokenizer.json "model": {"type": "BPE"}, or vocab.json + merges.txt): a word is
/// split into characters (a character missing from the vocabulary becomes its &lt;0xNN&gt; byte tokens with
/// byte_fallback, else the unknown token, fused when fuse_unk), then the adjacent pair with the lowest merge rank is
/// merged (ties: leftmost) until no pair has a rank. With ignore_merges a word that is itself a token is kept whole.
/// </summary>
/// <remarks>
/// Symbols sit in a doubly linked list over arrays and candidate merges in a binary heap keyed (rank, position), so a
/// word of n characters costs O(n log n). A heap entry is stale when its pair no longer yields the recorded token, the
/// same test Hugging Face applies. Scratch arrays are per thread; the output goes to a reusable <see cref="WordTokens"/>.
/// </remarks>
internal sealed class BpeModel
{
    private sealed class Scratch
    {
        public int[] Id = new int[64];
        public int[] Start = new int[64];
        public int[] End = new int[64];
        public int[] Prev = new int[64];
        public int[] Next = new int[64];
        public readonly PriorityQueue<(int Position, int NewId), (int Rank, int Position)> Queue = new();

        public void EnsureCapacity(int n)
        {
            if (Id.Length >= n) return;
            int size = Math.Max(n, Id.Length * 2);
            Array.Resize(ref Id, size);
            Array.Resize(ref Start, size);
            Array.Resize(ref End, size);
            Array.Resize(ref Prev, size);
            Array.Resize(ref Next, size);
        }
    }

    [ThreadStatic]
    private static Scratch? t_scratch;

    private readonly TokenVocabulary _vocabulary;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges;
    private readonly int[] _byteTokenIds = new int[256];
    private readonly string? _continuingSubwordPrefix;
    private readonly string? _endOfWordSuffix;

    /// <param name="vocabulary">Model tokens.</param>
    /// <param name="merges">Merge rules in rank order; each must join two tokens into a token of the vocabulary.</param>
    /// <param name="unknownToken">Token for characters not in the vocabulary (null: such characters are dropped, as Hugging Face does).</param>
    /// <param name="fuseUnknown">Consecutive unknown characters become one unknown token.</param>
    /// <param name="byteFallback">Characters not in the vocabulary become their UTF-8 bytes as &lt;0xNN&gt; tokens.</param>
    /// <param name="ignoreMerges">A word that is a token is emitted as is, without merging.</param>
    /// <param name="continuingSubwordPrefix">Prefix of non-initial pieces (rare for BPE; e.g. "##").</param>
    /// <param name="endOfWordSuffix">Suffix of word-final pieces (e.g. "&lt;/w&gt;").</param>
    /// <param name="sourceName">File named in errors.</param>
    /// <param name="mergesField">Field named in errors about merges.</param>
    public BpeModel(TokenVocabulary vocabulary, IReadOnlyList<(string Left, string Right)> merges, string? unknownToken, bool fuseUnknown,
        bool byteFallback, bool ignoreMerges, string? continuingSubwordPrefix, string? endOfWordSuffix, string sourceName, string mergesField)
    {
        _vocabulary = vocabulary;
        FuseUnknown = fuseUnknown;
        ByteFallback = byteFallback;
        IgnoreMerges = ignoreMerges;
        _continuingSubwordPrefix = string.IsNullOrEmpty(continuingSubwordPrefix) ? null : continuingSubwordPrefix;
        _endOfWordSuffix = string.IsNullOrEmpty(endOfWordSuffix) ? null : endOfWordSuffix;
        UnknownId = -1;
        if (unknownToken is not null)
        {
            if (!vocabulary.TryGetId(unknownToken, out int unk))
            {
                throw new TokenizerFormatException(sourceName, "unk_token", $"unknown token '{TokenVocabulary.Shorten(unknownToken)}' is not in the vocabulary");
            }
            UnknownId = unk;
        }
        for (int b = 0; b < 256; b++) _byteTokenIds[b] = vocabulary.TryGetId($"<0x{b:X2}>", out int id) ? id : -1;

        int prefixLength = _continuingSubwordPrefix?.Length ?? 0;
        _merges = new Dictionary<long, (int, int)>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            if (!vocabulary.TryGetId(left, out int leftId) || !vocabulary.TryGetId(right, out int rightId))
            {
                string missing = vocabulary.TryGetId(left, out _) ? right : left;
                throw new TokenizerFormatException(sourceName, $"{mergesField}[{rank}]", $"merge refers to '{TokenVocabulary.Shorten(missing)}', which is not in the vocabulary");
            }
            string merged = prefixLength > 0 && right.StartsWith(_continuingSubwordPrefix!, StringComparison.Ordinal)
                ? string.Concat(left, right.AsSpan(prefixLength))
                : left + right;
            if (!vocabulary.TryGetId(merged, out int newId))
            {
                throw new TokenizerFormatException(sourceName, $"{mergesField}[{rank}]", $"merged token '{TokenVocabulary.Shorten(merged)}' is not in the vocabulary");
            }
            _merges[Key(leftId, rightId)] = (rank, newId);
        }
    }

    public int UnknownId { get; }

    public bool FuseUnknown { get; }

    public bool ByteFallback { get; }

    public bool IgnoreMerges { get; }

    public TokenVocabulary Vocabulary => _vocabulary;

    /// <summary>Tokenizes one word; each output token's range is in units of <paramref name="word"/>.</summary>
    public void EncodeWord(ReadOnlySpan<char> word, WordTokens output)
    {
        output.Clear();
        if (word.IsEmpty) return;
        if (IgnoreMerges && _vocabulary.TryGetId(word, out int whole))
        {
            output.Add(whole, 0, word.Length);
            return;
        }
        var s = t_scratch ??= new Scratch();
        s.EnsureCapacity(word.Length * 4 + 1);
        int count = InitialSymbols(word, s);
        MergeAll(s, count);
        for (int i = 0; i != -1 && count > 0; i = s.Next[i])
        {
            output.Add(s.Id[i], s.Start[i], s.End[i] - s.Start[i]);
        }
    }

    /// <summary>Characters (with prefix/suffix when configured) → symbols; unknown characters → byte tokens or [UNK].</summary>
    private int InitialSymbols(ReadOnlySpan<char> word, Scratch s)
    {
        int count = 0;
        int unknownStart = -1, unknownEnd = -1;
        Span<char> buffer = stackalloc char[64];
        Span<byte> utf8 = stackalloc byte[4];
        for (int position = 0; position < word.Length;)
        {
            int width = char.IsHighSurrogate(word[position]) && position + 1 < word.Length && char.IsLowSurrogate(word[position + 1]) ? 2 : 1;
            var character = word.Slice(position, width);
            bool first = position == 0, last = position + width == word.Length;
            int end = position + width;
            if (!Lookup(character, first, last, buffer, out int id))
            {
                int byteCount = System.Text.Encoding.UTF8.GetBytes(character, utf8);
                bool allBytes = ByteFallback;
                for (int b = 0; allBytes && b < byteCount; b++) allBytes = _byteTokenIds[utf8[b]] >= 0;
                if (allBytes)
                {
                    FlushUnknown(s, ref count, ref unknownStart, unknownEnd);
                    for (int b = 0; b < byteCount; b++) Push(s, ref count, _byteTokenIds[utf8[b]], position, end);
                }
                else if (UnknownId >= 0)
                {
                    if (unknownStart >= 0 && !FuseUnknown) FlushUnknown(s, ref count, ref unknownStart, unknownEnd);
                    if (unknownStart < 0) unknownStart = position;
                    unknownEnd = end;
                }
                position = end;
                continue;
            }
            FlushUnknown(s, ref count, ref unknownStart, unknownEnd);
            Push(s, ref count, id, position, end);
            position = end;
        }
        FlushUnknown(s, ref count, ref unknownStart, unknownEnd);
        if (count > 0) s.Next[count - 1] = -1;
        return count;
    }

    private bool Lookup(ReadOnlySpan<char> character, bool first, bool last, Span<char> buffer, out int id)
    {
        if (_continuingSubwordPrefix is null && _endOfWordSuffix is null) return _vocabulary.TryGetId(character, out id);
        string prefix = first ? string.Empty : _continuingSubwordPrefix ?? string.Empty;
        string suffix = last ? _endOfWordSuffix ?? string.Empty : string.Empty;
        int length = prefix.Length + character.Length + suffix.Length;
        Span<char> key = length <= buffer.Length ? buffer[..length] : new char[length];
        prefix.AsSpan().CopyTo(key);
        character.CopyTo(key[prefix.Length..]);
        suffix.AsSpan().CopyTo(key[(prefix.Length + character.Length)..]);
        return _vocabulary.TryGetId(key, out id);
    }

    private void FlushUnknown(Scratch s, ref int count, ref int unknownStart, int unknownEnd)
    {
        if (unknownStart < 0) return;
        Push(s, ref count, UnknownId, unknownStart, unknownEnd);
        unknownStart = -1;
    }

    private static void Push(Scratch s, ref int count, int id, int start, int end)
    {
        s.Id[count] = id;
        s.Start[count] = start;
        s.End[count] = end;
        s.Prev[count] = count - 1;
        s.Next[count] = count + 1;
        count++;
    }

    private void MergeAll(Scratch s, int count)
    {
        if (count < 2) return;
        var queue = s.Queue;
        queue.Clear();
        for (int i = 0; i + 1 < count; i++) TryQueue(s, i, i + 1);
        while (queue.TryDequeue(out var top, out _))
        {
            int position = top.Position;
            if (s.Id[position] < 0) continue;          // merged into its left neighbour
            int next = s.Next[position];
            if (next < 0) continue;
            if (!_merges.TryGetValue(Key(s.Id[position], s.Id[next]), out var merge) || merge.NewId != top.NewId) continue;
            s.Id[position] = top.NewId;
            s.End[position] = s.End[next];
            s.Id[next] = -1;
            s.Next[position] = s.Next[next];
            if (s.Next[next] >= 0) s.Prev[s.Next[next]] = position;
            if (s.Prev[position] >= 0) TryQueue(s, s.Prev[position], position);
            if (s.Next[position] >= 0) TryQueue(s, position, s.Next[position]);
        }
    }

    private void TryQueue(Scratch s, int left, int right)
    {
        if (_merges.TryGetValue(Key(s.Id[left], s.Id[right]), out var merge))
        {
            s.Queue.Enqueue((left, merge.NewId), (merge.Rank, left));
        }
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;
}

/// <summary>Reusable output of <see cref="BpeModel.EncodeWord"/>: ids with [start, start + length) ranges in the word.</summary>
internal sealed class WordTokens
{
    public List<int> Ids { get; } = new();

    public List<int> Starts { get; } = new();

    public List<int> Lengths { get; } = new();

    public int Count => Ids.Count;

    public void Clear()
    {
        Ids.Clear();
        Starts.Clear();
        Lengths.Clear();
    }

    public void Add(int id, int start, int length)
    {
        Ids.Add(id);
        Starts.Add(start);
        Lengths.Add(length);
    }
}
