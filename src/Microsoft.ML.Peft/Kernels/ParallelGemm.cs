namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// Multithreaded run of the <see cref="GemmDriver{TKernel}"/> loop nest. Each (jc, pc) step is one fork/join: the
/// threads compute C with the B panel packed for this step and, as they run out of compute, pack the B panel of the
/// next step into the other half of a double buffer.
/// </summary>
/// <remarks>
/// Work is claimed dynamically through atomic counters rather than assigned: on a machine shared with other processes
/// a thread that is descheduled simply claims less, and the others finish its share. Compute items are rectangles of
/// C: row ranges (whole MR-row tiles, each packing its own A block) times, when there are too few rows to go round, column
/// ranges of the B panel. There are about four items per thread so the load balances. A thread that claims the next
/// column range of the row block it has just packed reuses its packed A.
/// </remarks>
internal sealed unsafe class ParallelGemm<TKernel, TB>
    where TKernel : struct, IMicroKernel
    where TB : struct, IBPanelSource
{
    private const int ItemsPerThread = 4;

    private readonly GemmCall _call;
    private readonly TB _b;
    private readonly int _threads;
    private readonly Blocking _blocking;
    private readonly int _rowTiles, _rowItems, _maxItemRows, _columnItems;
    private readonly float* _packedB0, _packedB1;
    private readonly Action<int> _packFirst, _computeAndPackNext;

    // The current step and the work counters, reset by the coordinating thread before each fork.
    private Step _current, _next;
    private int _nextComputeItem, _nextPackItem;

    private ParallelGemm(in GemmCall call, TB b, int threads, Blocking blocking, float* packedB)
    {
        _call = call;
        _b = b;
        _threads = threads;
        _blocking = blocking;
        _packedB0 = packedB;
        _packedB1 = packedB + blocking.PackedBFloats;

        int panels = (blocking.Nc + TKernel.NR - 1) / TKernel.NR;
        int target = ItemsPerThread * threads;
        _rowTiles = (call.M + TKernel.MR - 1) / TKernel.MR;

        // Enough row items to keep each within MC and to reach the target, rounded up to a multiple of the thread
        // count; items split the MR-row tiles as evenly as possible (sizes differ by at most one tile), so that when
        // no thread is disturbed all finish together.
        int tilesPerBlock = blocking.Mc / TKernel.MR;
        int rowItems = Math.Max((_rowTiles + tilesPerBlock - 1) / tilesPerBlock, Math.Min(_rowTiles, target));
        _rowItems = Math.Min(_rowTiles, Blocking.RoundUp(rowItems, threads));
        _maxItemRows = (_rowTiles + _rowItems - 1) / _rowItems * TKernel.MR;
        _columnItems = Math.Clamp((target + _rowItems - 1) / _rowItems, 1, panels);

        _packFirst = _ => PackItems(_current);
        _computeAndPackNext = _ =>
        {
            ComputeItems(_current);
            if (_next.Valid) PackItems(_next);
        };
    }

    public static void Run(in GemmCall call, TB b, int threads)
    {
        Blocking blocking = Blocking.For<TKernel>(call.M, call.N, call.K, b.RowGranularity);
        PackBuffer bufferB = PackBuffer.RentForB(2 * blocking.PackedBFloats);
        try
        {
            new ParallelGemm<TKernel, TB>(call, b, threads, blocking, bufferB.Pointer).RunSteps();
        }
        finally
        {
            bufferB.Return();
        }
    }

    /// <summary>One (jc, pc) step: a kc×nc slice of B, packed into one half of the double buffer.</summary>
    private readonly record struct Step(bool Valid, int Jc, int Nc, int Pc, int Kc, nint PackedB);

    private Step StepAt(int jc, int pc, int index) => jc >= _call.N
        ? default
        : new Step(true, jc, Math.Min(_blocking.Nc, _call.N - jc), pc, Math.Min(_blocking.Kc, _call.K - pc),
            (nint)(index % 2 == 0 ? _packedB0 : _packedB1));

    private void RunSteps()
    {
        var options = new ParallelOptions { MaxDegreeOfParallelism = _threads };
        _current = StepAt(0, 0, 0);
        _nextPackItem = 0;
        Parallel.For(0, _threads, options, _packFirst);

        int index = 0, jc = 0, pc = 0;
        while (_current.Valid)
        {
            // The step after (jc, pc): next k slice, or the first k slice of the next column panel.
            int nextPc = pc + _blocking.Kc, nextJc = jc;
            if (nextPc >= _call.K)
            {
                nextPc = 0;
                nextJc += _blocking.Nc;
            }
            _next = StepAt(nextJc, nextPc, index + 1);
            _nextComputeItem = 0;
            _nextPackItem = 0;
            Parallel.For(0, _threads, options, _computeAndPackNext);

            _current = _next;
            (jc, pc, index) = (nextJc, nextPc, index + 1);
        }
    }

    /// <summary>Claims groups of B micro-panels of <paramref name="step"/> and packs them until none are left.</summary>
    private void PackItems(Step step)
    {
        int panels = (step.Nc + TKernel.NR - 1) / TKernel.NR;
        int panelsPerItem = Math.Max(1, panels / (ItemsPerThread * _threads));
        float* packedB = (float*)step.PackedB;
        for (int item; (item = Interlocked.Increment(ref _nextPackItem) - 1) * panelsPerItem < panels;)
        {
            int columnStart = item * panelsPerItem * TKernel.NR;
            int columnEnd = Math.Min(step.Nc, columnStart + panelsPerItem * TKernel.NR);
            _b.Pack(step.Pc, step.Kc, step.Jc + columnStart, columnEnd - columnStart, TKernel.NR,
                packedB + (nint)columnStart * step.Kc, TKernel.Isa);
        }
    }

    /// <summary>Claims rectangles of C for <paramref name="step"/> and computes them until none are left.</summary>
    private void ComputeItems(Step step)
    {
        int items = _rowItems * _columnItems;
        int panels = (step.Nc + TKernel.NR - 1) / TKernel.NR;
        float beta = step.Pc == 0 ? _call.Beta : 1f;
        PackBuffer? bufferA = null;
        int packedRowItem = -1;
        try
        {
            for (int item; (item = Interlocked.Increment(ref _nextComputeItem) - 1) < items;)
            {
                int rowItem = item / _columnItems, columnItem = item % _columnItems;
                int rowStart = (int)((long)_rowTiles * rowItem / _rowItems) * TKernel.MR;
                int rowEnd = Math.Min(_call.M, (int)((long)_rowTiles * (rowItem + 1) / _rowItems) * TKernel.MR);
                int rows = rowEnd - rowStart;
                int jBegin = (int)((long)panels * columnItem / _columnItems) * TKernel.NR;
                int jEnd = Math.Min(step.Nc, (int)((long)panels * (columnItem + 1) / _columnItems) * TKernel.NR);
                if (jBegin >= jEnd) continue;

                bufferA ??= PackBuffer.RentForA(_maxItemRows * _blocking.Kc);
                if (rowItem != packedRowItem)
                {
                    APacking.Pack(_call.TransA, _call.A, _call.Lda, rowStart, rows, step.Pc, step.Kc, TKernel.MR, bufferA.Pointer, TKernel.Isa);
                    packedRowItem = rowItem;
                }
                GemmDriver<TKernel>.MacroKernel(rows, step.Nc, step.Kc, bufferA.Pointer, (float*)step.PackedB,
                    _call.C + rowStart * _call.Ldc + step.Jc, _call.Ldc, _call.Alpha, beta, jBegin, jEnd);
            }
        }
        finally
        {
            bufferA?.Return();
        }
    }
}
