using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Microsoft.ML.Peft.Quantization;

/// <summary>
/// An index that lets an encoder skip most of the binary search over a strictly increasing 256-value code.
/// </summary>
/// <remarks>
/// <para>
/// Floats are ordered like their order-preserving 32-bit keys (<see cref="Key"/>). The top 16 bits of the key cut the
/// float line into 65,536 buckets, each a narrow interval (1/128 of an octave for normal numbers). For every bucket
/// <see cref="Lower"/> holds the binary search's answer for the bucket's smallest float: the largest code index whose
/// value is ≤ it (0 when none is). A value x in the bucket has an answer at most <see cref="MaxSteps"/> larger, so
/// "while map[lo + 1] ≤ x: lo++", unrolled that many times, gives exactly the binary search's index with one table
/// read and a few comparisons instead of eight dependent probes.
/// </para>
/// <para>
/// For bitsandbytes' dynamic maps the codes are at least ~1.4% apart relative to their magnitude while a bucket is
/// 0.8% wide, so <see cref="MaxSteps"/> is 1. Tables are shared between quantizers of the same code (64 KB each).
/// </para>
/// </remarks>
internal sealed class DynamicCodeBuckets
{
    /// <summary>Bits of the key below the bucket index.</summary>
    public const int Shift = 16;

    private const int BucketCount = 1 << (32 - Shift);

    private static readonly ConcurrentDictionary<string, DynamicCodeBuckets> Shared = new();

    private DynamicCodeBuckets(ReadOnlySpan<float> map)
    {
        // Three bytes of padding: a vector encoder reads the byte at index b as the low byte of a 4-byte gather.
        Lower = new byte[BucketCount + 3];
        int maxSteps = 0;
        for (uint bucket = 0; bucket < BucketCount; bucket++)
        {
            float smallest = FromKey(bucket << Shift), largest = FromKey((bucket << Shift) | ((1u << Shift) - 1));
            int lo = float.IsNaN(smallest) ? 0 : LowerIndex(map, smallest);
            Lower[bucket] = (byte)lo;
            if (!float.IsNaN(smallest) && !float.IsNaN(largest)) maxSteps = Math.Max(maxSteps, LowerIndex(map, largest) - lo);
        }
        MaxSteps = maxSteps;
    }

    /// <summary>Per bucket, the largest code index whose value is ≤ the bucket's smallest float (0 when none is).</summary>
    public byte[] Lower { get; }

    /// <summary>The most code values that lie inside one bucket: the comparisons an encoder needs after the lookup.</summary>
    public int MaxSteps { get; }

    /// <summary>The table for <paramref name="map"/>, built once per distinct code.</summary>
    public static DynamicCodeBuckets For(float[] map) =>
        Shared.GetOrAdd(Convert.ToBase64String(MemoryMarshal.AsBytes(map.AsSpan())), _ => new DynamicCodeBuckets(map));

    /// <summary>A key whose unsigned order is the float order (−0 just below +0): sign bit flipped for positives, all bits for negatives.</summary>
    public static uint Key(float x)
    {
        int bits = BitConverter.SingleToInt32Bits(x);
        return bits >= 0 ? (uint)bits | 0x8000_0000u : ~(uint)bits;
    }

    private static float FromKey(uint key) =>
        BitConverter.Int32BitsToSingle((int)((key & 0x8000_0000u) != 0 ? key & 0x7FFF_FFFFu : ~key));

    /// <summary>Largest i with map[i] ≤ x, or 0 when x &lt; map[0]: the binary search's invariant.</summary>
    private static int LowerIndex(ReadOnlySpan<float> map, float x)
    {
        int lo = 0;
        for (int step = map.Length / 2; step >= 1; step >>= 1)
        {
            if (map[lo + step] <= x) lo += step;
        }
        return lo;
    }
}
