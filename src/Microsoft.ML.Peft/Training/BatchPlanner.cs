using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Training;

/// <summary>
/// The batches of one epoch as lists of row indices: a pure function of (seed, epoch, row lengths), so a resumed run
/// sees exactly the batches the interrupted one would have seen.
/// </summary>
internal static class BatchPlanner
{
    private const int MegaBatchFactor = 50;

    /// <summary>Number of batches per epoch for <paramref name="rowCount"/> rows.</summary>
    public static int BatchesPerEpoch(int rowCount, int batchSize) => (rowCount + batchSize - 1) / batchSize;

    /// <summary>The batches of <paramref name="epoch"/> (0-based); the last one may be smaller.</summary>
    public static int[][] Plan(IReadOnlyList<int> lengths, int batchSize, BatchOrder order, ulong seed, int epoch)
    {
        ArgumentNullException.ThrowIfNull(lengths);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        var generator = new Generator(EpochSeed(seed, epoch));
        var permutation = Permutation(lengths.Count, generator);
        if (order == BatchOrder.Shuffled) return Cut(permutation, batchSize);

        int mega = batchSize * MegaBatchFactor;
        for (int start = 0; start < permutation.Length; start += mega)
        {
            var segment = permutation.AsSpan(start, Math.Min(mega, permutation.Length - start));
            // Stable: equal lengths keep their shuffled order, so the plan does not depend on the sort algorithm.
            var sorted = segment.ToArray().Select((row, i) => (row, i))
                .OrderByDescending(x => lengths[x.row]).ThenBy(x => x.i).Select(x => x.row).ToArray();
            sorted.CopyTo(segment);
        }
        var batches = Cut(permutation, batchSize);
        var batchOrder = Permutation(batches.Length, generator);
        return batchOrder.Select(b => batches[b]).ToArray();
    }

    /// <summary>A uniformly random permutation of 0..count−1 (Fisher–Yates driven by the counter-based generator).</summary>
    internal static int[] Permutation(int count, Generator generator)
    {
        var result = new int[count];
        for (int i = 0; i < count; i++) result[i] = i;
        for (int i = count - 1; i > 0; i--)
        {
            // Multiply-shift maps 64 random bits to [0, i] with negligible bias (i < 2^31).
            int j = (int)(((UInt128)generator.NextUInt64() * (ulong)(i + 1)) >> 64);
            (result[i], result[j]) = (result[j], result[i]);
        }
        return result;
    }

    private static int[][] Cut(int[] rows, int batchSize)
    {
        var batches = new int[BatchesPerEpoch(rows.Length, batchSize)][];
        for (int b = 0; b < batches.Length; b++) batches[b] = rows.AsSpan(b * batchSize, Math.Min(batchSize, rows.Length - b * batchSize)).ToArray();
        return batches;
    }

    private static ulong EpochSeed(ulong seed, int epoch) => seed * 0x9E3779B97F4A7C15UL + (ulong)epoch + 1;
}
