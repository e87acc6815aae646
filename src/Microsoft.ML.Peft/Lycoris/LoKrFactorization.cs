namespace Microsoft.ML.Peft.Lycoris;

/// <summary>PEFT's (LyCORIS's) <c>factorization</c>: how LoKr splits a dimension into the two Kronecker factors.</summary>
public static class LoKrFactorization
{
    /// <summary>
    /// Two numbers whose product is <paramref name="dimension"/>. With an exact divisor <paramref name="factor"/> &gt; 0:
    /// (factor, dimension / factor), in that order (as PEFT, not reordered). Otherwise (factor -1: no cap) the divisor
    /// pair is grown from (1, dimension) through each next divisor m while m &lt; n and m ≤ factor, and returned with the
    /// smaller first: (16, 16) for 256, (8, 16) for 128, (1, 127) for 127, (18, 20) for 360.
    /// </summary>
    public static (int First, int Second) Factorize(int dimension, int factor = -1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dimension);
        if (factor > 0 && dimension % factor == 0) return (factor, dimension / factor);
        if (factor == -1) factor = dimension;
        int m = 1, n = dimension;
        // PEFT computes length = 1 + dimension once and never updates it, so that test never stops the search.
        int length = m + n;
        while (m < n)
        {
            int nextM = m + 1;
            while (dimension % nextM != 0) nextM++;
            int nextN = dimension / nextM;
            if (nextM + nextN > length || nextM > factor) break;
            (m, n) = (nextM, nextN);
        }
        return m > n ? (n, m) : (m, n);
    }
}
