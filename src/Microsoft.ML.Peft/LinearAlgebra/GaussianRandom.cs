namespace Microsoft.ML.Peft.LinearAlgebra;

/// <summary>
/// Seeded standard-normal generator (xoshiro256** bits, Marsaglia polar method) for randomized SVD test matrices,
/// Monte-Carlo predictives and posterior weight samples.
/// </summary>
/// <remarks>
/// Written out rather than wrapping <see cref="Random"/> so that a seed gives the same stream on every runtime
/// version: results that depend on sampling (a randomized SVD, an MC predictive) are then reproducible bit for bit.
/// Not thread-safe; use one instance per thread.
/// </remarks>
public sealed class GaussianRandom
{
    private ulong _s0, _s1, _s2, _s3;
    private double _spare;
    private bool _hasSpare;

    /// <summary>Creates a generator whose stream is fully determined by <paramref name="seed"/>.</summary>
    public GaussianRandom(long seed)
    {
        // SplitMix64 expands the seed into the 256-bit state, as the xoshiro authors recommend.
        ulong x = unchecked((ulong)seed);
        _s0 = SplitMix(ref x);
        _s1 = SplitMix(ref x);
        _s2 = SplitMix(ref x);
        _s3 = SplitMix(ref x);
    }

    /// <summary>A uniform double in [0, 1) with 53 random bits.</summary>
    public double NextUniform() => (NextBits() >> 11) * (1.0 / (1UL << 53));

    /// <summary>A draw from N(0, 1).</summary>
    public double NextStandardNormal()
    {
        if (_hasSpare)
        {
            _hasSpare = false;
            return _spare;
        }
        double u, v, s;
        do
        {
            u = 2 * NextUniform() - 1;
            v = 2 * NextUniform() - 1;
            s = u * u + v * v;
        }
        while (s >= 1 || s == 0);
        double scale = Math.Sqrt(-2 * Math.Log(s) / s);
        _spare = v * scale;
        _hasSpare = true;
        return u * scale;
    }

    /// <summary>Fills <paramref name="destination"/> with independent N(0, 1) draws.</summary>
    public void FillStandardNormal(Span<double> destination)
    {
        for (int i = 0; i < destination.Length; i++) destination[i] = NextStandardNormal();
    }

    private ulong NextBits()
    {
        ulong result = RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotateLeft(_s3, 45);
        return result;
    }

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
