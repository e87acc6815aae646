namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// Process-wide pool of pinned float buffers that back tensors. Buffers are grouped in size classes with four steps
/// per power of two (capacity = m·2^e, m ∈ {4,5,6,7}), so a request wastes at most 25% and a training step that asks
/// for the same shapes every time gets the same buffers back: after warm-up a step allocates no tensor memory.
/// </summary>
/// <remarks>
/// Buffers are allocated on the pinned object heap so kernels may work on raw pointers (and capture them in parallel
/// loops) without pinning per call. The pool never shrinks on its own; <see cref="Trim"/> drops every idle buffer.
/// Every dtype is served from the same float buffers (sizes are rounded up to whole 4-byte words).
/// </remarks>
public static class TensorPool
{
    private const int SmallestCapacity = 64;
    private static readonly Stack<float[]>[] Buckets = CreateBuckets();
    private static long retainedBytes;
    private static long allocatedBytes;

    /// <summary>Bytes held idle in the pool, ready for reuse.</summary>
    public static long RetainedBytes => Interlocked.Read(ref retainedBytes);

    /// <summary>Total bytes the pool has ever allocated from the GC (grows only when a request misses the pool).</summary>
    public static long AllocatedBytes => Interlocked.Read(ref allocatedBytes);

    /// <summary>Releases every idle buffer to the garbage collector.</summary>
    public static void Trim()
    {
        foreach (var bucket in Buckets)
        {
            lock (bucket)
            {
                foreach (var buffer in bucket) Interlocked.Add(ref retainedBytes, -4L * buffer.Length);
                bucket.Clear();
            }
        }
    }

    /// <summary>A pinned buffer of at least <paramref name="floatCount"/> floats; contents are arbitrary.</summary>
    internal static float[] Rent(int floatCount)
    {
        int bucketIndex = BucketIndex(floatCount, out int capacity);
        var bucket = Buckets[bucketIndex];
        lock (bucket)
        {
            if (bucket.Count > 0)
            {
                var reused = bucket.Pop();
                Interlocked.Add(ref retainedBytes, -4L * reused.Length);
                return reused;
            }
        }
        Interlocked.Add(ref allocatedBytes, 4L * capacity);
        return GC.AllocateUninitializedArray<float>(capacity, pinned: true);
    }

    /// <summary>Returns a buffer obtained from <see cref="Rent"/>.</summary>
    internal static void Return(float[] buffer)
    {
        int bucketIndex = BucketIndex(buffer.Length, out int capacity);
        if (capacity != buffer.Length) throw new InvalidOperationException("buffer was not rented from TensorPool");
        var bucket = Buckets[bucketIndex];
        lock (bucket) bucket.Push(buffer);
        Interlocked.Add(ref retainedBytes, 4L * buffer.Length);
    }

    /// <summary>Size class of a request: capacity = m·2^e with m in 4..7 (or the smallest class).</summary>
    internal static int BucketIndex(int floatCount, out int capacity)
    {
        if (floatCount <= SmallestCapacity)
        {
            capacity = SmallestCapacity;
            return 0;
        }
        int e = 31 - int.LeadingZeroCount(floatCount) - 2;          // floatCount >> e is in [4, 8)
        long m = ((long)floatCount + (1L << e) - 1) >> e;            // round up: m in [4, 8]
        if (m == 8)
        {
            m = 4;
            e++;
        }
        long cap = m << e;
        if (cap > Array.MaxLength) throw new OutOfMemoryException($"tensor of {floatCount} words exceeds the largest array");
        capacity = (int)cap;
        return 1 + (e - 4) * 4 + (int)(m - 4);                        // e ≥ 4 because floatCount > 64
    }

    private static Stack<float[]>[] CreateBuckets()
    {
        var buckets = new Stack<float[]>[1 + 4 * 32];
        for (int i = 0; i < buckets.Length; i++) buckets[i] = new Stack<float[]>();
        return buckets;
    }
}
