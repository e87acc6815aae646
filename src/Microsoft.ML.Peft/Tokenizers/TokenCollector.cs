namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// Receives the tokens an encoder produces: ids always, offsets into the original text only when asked for
/// (EncodeToIds and CountTokens do not pay for them). Reused per thread by the batch pipeline so that encoding a batch
/// allocates only its output arrays.
/// </summary>
internal sealed class TokenCollector
{
    public List<int> Ids { get; } = new();

    public List<int> Starts { get; } = new();

    public List<int> Lengths { get; } = new();

    /// <summary>Whether the encoder must compute offsets.</summary>
    public bool WantOffsets { get; private set; }

    public int Count => Ids.Count;

    public void Reset(bool wantOffsets)
    {
        WantOffsets = wantOffsets;
        Ids.Clear();
        Starts.Clear();
        Lengths.Clear();
    }

    /// <summary>Drops tokens from the end (a word that turned out to be unknown is re-emitted as one token).</summary>
    public void Truncate(int count)
    {
        Ids.RemoveRange(count, Ids.Count - count);
        if (WantOffsets)
        {
            Starts.RemoveRange(count, Starts.Count - count);
            Lengths.RemoveRange(count, Lengths.Count - count);
        }
    }

    /// <summary>Stretches the last token's range to end at <paramref name="end"/> (SentencePiece fuses runs of unknowns).</summary>
    public void ExtendLast(int end)
    {
        if (WantOffsets) Lengths[^1] = Math.Max(Lengths[^1], end - Starts[^1]);
    }

    public void Add(int id, int start, int length)
    {
        Ids.Add(id);
        if (WantOffsets)
        {
            Starts.Add(start);
            Lengths.Add(length);
        }
    }
}
