namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// A seeded, counter-based random number generator: value i of a draw is a pure function of (seed, offset + i),
/// so the same seed gives bit-identical tensors on every machine, independent of thread count or chunking.
/// </summary>
/// <remarks>
/// Each 64-bit value is the SplitMix64 finaliser (a strong 64-bit bijective mixer) applied to
/// hash(seed) + (offset + i)·golden-ratio constant, i.e. SplitMix64 evaluated at an arbitrary position.
/// Uniform floats take the top 24 bits (exactly representable, in [0, 1)); normals use Box–Muller on the two 32-bit
/// halves of one value, in double. <see cref="Offset"/> advances by the number of values drawn and can be saved and
/// restored to replay a stream.
/// </remarks>
public sealed class Generator
{
    private const ulong Golden = 0x9E3779B97F4A7C15UL;
    private readonly ulong key;

    /// <summary>A generator for <paramref name="seed"/> starting at offset 0.</summary>
    public Generator(ulong seed)
    {
        Seed = seed;
        key = Mix(seed ^ 0x6A09E667F3BCC909UL);
    }

    /// <summary>The seed.</summary>
    public ulong Seed { get; }

    /// <summary>Position in the stream: how many values have been drawn.</summary>
    public long Offset { get; set; }

    /// <summary>The next uniform float in [0, 1).</summary>
    public float NextUniform() => UniformAt(Reserve(1));

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64() => BitsAt(Reserve(1));

    /// <summary>Fills <paramref name="destination"/> with uniform floats in [low, high).</summary>
    public void FillUniform(Span<float> destination, float low = 0f, float high = 1f)
    {
        long start = Reserve(destination.Length);
        FillUniformAt(destination, start, low, high);
    }

    /// <summary>Fills <paramref name="destination"/> with normal floats N(mean, std²).</summary>
    public void FillNormal(Span<float> destination, float mean = 0f, float std = 1f)
    {
        long start = Reserve(destination.Length);
        FillNormalAt(destination, start, mean, std);
    }

    /// <summary>Claims <paramref name="count"/> consecutive stream positions and returns the first.</summary>
    internal long Reserve(long count)
    {
        long start = Offset;
        Offset += count;
        return start;
    }

    internal void FillUniformAt(Span<float> destination, long start, float low, float high)
    {
        float range = high - low;
        for (int i = 0; i < destination.Length; i++) destination[i] = low + range * UniformAt(start + i);
    }

    internal void FillNormalAt(Span<float> destination, long start, float mean, float std)
    {
        for (int i = 0; i < destination.Length; i++)
        {
            ulong bits = BitsAt(start + i);
            double u1 = ((bits >> 32) + 1.0) * (1.0 / 4294967296.0);   // (0, 1]: log is finite
            double u2 = (bits & 0xFFFFFFFFUL) * (1.0 / 4294967296.0);  // [0, 1)
            double z = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
            destination[i] = (float)(mean + std * z);
        }
    }

    /// <summary>Uniform float in [0, 1) at stream position <paramref name="position"/>.</summary>
    internal float UniformAt(long position) => (BitsAt(position) >> 40) * (1f / 16777216f);

    internal ulong BitsAt(long position) => Mix(key + (ulong)position * Golden);

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
