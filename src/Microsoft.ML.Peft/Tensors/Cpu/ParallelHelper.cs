namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// Splits loops over rows across cores only when the work is large enough to pay for it: tiny models
/// (hidden size 64) run thousands of small ops per step, where a thread hand-off would cost more than the op.
/// </summary>
internal static class ParallelHelper
{
    /// <summary>Below this many elements of work an op runs on the calling thread.</summary>
    public const long MinParallelElements = 1 << 15;

    /// <summary>Cores available to kernels.</summary>
    public static int Workers { get; } = Math.Max(1, Environment.ProcessorCount);

    /// <summary>Runs <paramref name="body"/>(start, end) over [0, count) in contiguous chunks; in parallel when
    /// count·costPerItem reaches <see cref="MinParallelElements"/>.</summary>
    public static void For(int count, long costPerItem, Action<int, int> body)
    {
        if (count <= 0) return;
        long total = count * Math.Max(costPerItem, 1);
        int chunks = (int)Math.Min(Math.Min(count, Workers * 4L), Math.Max(1, total / (MinParallelElements / 2)));
        if (chunks <= 1 || Workers == 1)
        {
            body(0, count);
            return;
        }
        Parallel.For(0, chunks, c =>
        {
            int start = (int)((long)count * c / chunks);
            int end = (int)((long)count * (c + 1) / chunks);
            if (end > start) body(start, end);
        });
    }
}
