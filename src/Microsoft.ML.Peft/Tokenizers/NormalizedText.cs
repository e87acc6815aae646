namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// A normalised copy of a text segment with, for every normalised UTF-16 unit, the range of original units it came
/// from. Normalisers append to it; encoders read <see cref="Chars"/> and map token spans back with
/// <see cref="OriginalStart"/>/<see cref="OriginalEnd"/>. Instances are reused per thread, so steady-state encoding
/// does not allocate here.
/// </summary>
internal sealed class NormalizedText
{
    [ThreadStatic]
    private static NormalizedText? t_instance;

    [ThreadStatic]
    private static NormalizedText? t_second;

    private char[] _chars = new char[256];
    private int[] _originalStart = new int[256];
    private int[] _originalEnd = new int[256];

    public int Length { get; private set; }

    public ReadOnlySpan<char> Chars => _chars.AsSpan(0, Length);

    /// <summary>The per-thread instance, cleared.</summary>
    public static NormalizedText Rent()
    {
        var instance = t_instance ??= new NormalizedText();
        instance.Length = 0;
        return instance;
    }

    /// <summary>A second per-thread instance, cleared, for normalisers that rewrite one buffer into another.</summary>
    public static NormalizedText RentSecond()
    {
        var instance = t_second ??= new NormalizedText();
        instance.Length = 0;
        return instance;
    }

    /// <summary>The second per-thread instance, untouched (to tell which buffer a result lives in).</summary>
    public static NormalizedText? PeekSecond() => t_second;

    public void Clear() => Length = 0;

    /// <summary>Appends <paramref name="c"/>, produced from original units [<paramref name="start"/>, <paramref name="end"/>).</summary>
    public void Append(char c, int start, int end)
    {
        if (Length == _chars.Length) Grow();
        _chars[Length] = c;
        _originalStart[Length] = start;
        _originalEnd[Length] = end;
        Length++;
    }

    /// <summary>Appends every unit of <paramref name="s"/>, all produced from [<paramref name="start"/>, <paramref name="end"/>).</summary>
    public void Append(ReadOnlySpan<char> s, int start, int end)
    {
        foreach (char c in s) Append(c, start, end);
    }

    /// <summary>Drops units from the end.</summary>
    public void Truncate(int length) => Length = length;

    /// <summary>Original start of normalised unit <paramref name="index"/>.</summary>
    public int OriginalStart(int index) => _originalStart[index];

    /// <summary>Original end of normalised unit <paramref name="index"/>.</summary>
    public int OriginalEnd(int index) => _originalEnd[index];

    /// <summary>
    /// The original range covered by normalised units [<paramref name="start"/>, <paramref name="end"/>): from the
    /// first unit's start to the furthest end. Units inserted by normalisation carry an empty range, so a token made
    /// only of inserted units gets an empty range at its insertion point.
    /// </summary>
    public (int Start, int Length) MapToOriginal(int start, int end)
    {
        int s = _originalStart[start], e = _originalEnd[start];
        for (int i = start + 1; i < end; i++)
        {
            if (_originalEnd[i] > e) e = _originalEnd[i];
        }
        return (s, e - s);
    }

    private void Grow()
    {
        int size = _chars.Length * 2;
        Array.Resize(ref _chars, size);
        Array.Resize(ref _originalStart, size);
        Array.Resize(ref _originalEnd, size);
    }
}
