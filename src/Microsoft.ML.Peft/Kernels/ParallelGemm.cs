namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// Multithreaded run of <see cref="GemmDriver{TKernel}"/>: for each (jc, pc) step the threads first pack the shared B
/// panel together (disjoint NR-panel ranges), then each computes its own rectangle of C, packing its own A rows.
/// </summary>
/// <remarks>
/// Threads form a tm × tn grid: tm row ranges (MR-aligned) × tn ranges of B micro-panels. Tall products split rows
/// only (no duplicated work); short wide ones (few rows, e.g. a matrix–vector product) split columns, each thread then
/// packing the same few A rows, which is cheap because there are few.
/// </remarks>
internal sealed unsafe class ParallelGemm<TKernel, TB>
    where TKernel : struct, IMicroKernel
    where TB : struct, IBPanelSource
{
    private readonly GemmCall _call;
    private readonly TB _b;
    private readonly int _threads, _threadColumns, _rowsPerThread;
    private readonly Blocking _blocking;
    private readonly float* _packedB;
    private readonly Action<int> _packB, _compute;

    // The current (jc, pc) step, set by the coordinating thread between parallel phases.
    private int _jc, _nc, _pc, _kc;

    private ParallelGemm(in GemmCall call, TB b, int threads, int threadRows, float* packedB, Blocking blocking)
    {
        _call = call;
        _b = b;
        _threads = threads;
        _threadColumns = threads / threadRows;
        _rowsPerThread = Blocking.RoundUp((call.M + threadRows - 1) / threadRows, TKernel.MR);
        _blocking = blocking;
        _packedB = packedB;
        _packB = PackB;
        _compute = Compute;
    }

    public static void Run(in GemmCall call, TB b, int threads)
    {
        int threadRows = ChooseThreadRows(call.M, call.N, threads);
        int rowsPerThread = Blocking.RoundUp((call.M + threadRows - 1) / threadRows, TKernel.MR);
        Blocking blocking = Blocking.For<TKernel>(call.M, call.N, call.K, rowsPerThread);
        PackBuffer bufferB = PackBuffer.RentForB(blocking.PackedBFloats);
        try
        {
            var job = new ParallelGemm<TKernel, TB>(call, b, threads, threadRows, bufferB.Pointer, blocking);
            job.RunSteps();
        }
        finally
        {
            bufferB.Return();
        }
    }

    /// <summary>
    /// Picks tm (a divisor of the thread count) minimising the largest per-thread tile, rounding included; ties go to
    /// more row ranges, which never duplicate A packing.
    /// </summary>
    private static int ChooseThreadRows(int m, int n, int threads)
    {
        int nPanels = (Math.Min(n, TKernel.NC) + TKernel.NR - 1) / TKernel.NR;
        int best = 1;
        long bestArea = long.MaxValue;
        for (int tm = 1; tm <= threads; tm++)
        {
            if (threads % tm != 0) continue;
            int tn = threads / tm;
            long rows = Blocking.RoundUp((m + tm - 1) / tm, TKernel.MR);
            long panels = (nPanels + tn - 1) / tn;
            long area = rows * panels;
            if (area <= bestArea)
            {
                best = tm;
                bestArea = area;
            }
        }
        return best;
    }

    private void RunSteps()
    {
        var options = new ParallelOptions { MaxDegreeOfParallelism = _threads };
        for (_jc = 0; _jc < _call.N; _jc += _blocking.Nc)
        {
            _nc = Math.Min(_blocking.Nc, _call.N - _jc);
            for (_pc = 0; _pc < _call.K; _pc += _blocking.Kc)
            {
                _kc = Math.Min(_blocking.Kc, _call.K - _pc);
                Parallel.For(0, _threads, options, _packB);
                Parallel.For(0, _threads, options, _compute);
            }
        }
    }

    /// <summary>Thread t packs its share of the B panel's micro-panels.</summary>
    private void PackB(int t)
    {
        int panels = (_nc + TKernel.NR - 1) / TKernel.NR;
        int first = (int)((long)panels * t / _threads), last = (int)((long)panels * (t + 1) / _threads);
        if (first == last) return;
        int columnStart = first * TKernel.NR, columnEnd = Math.Min(_nc, last * TKernel.NR);
        _b.Pack(_pc, _kc, _jc + columnStart, columnEnd - columnStart, TKernel.NR, _packedB + (nint)columnStart * _kc, TKernel.Isa);
    }

    /// <summary>Thread t computes its rectangle of C for the current step.</summary>
    private void Compute(int t)
    {
        int rowBegin = t / _threadColumns * _rowsPerThread;
        int rowEnd = Math.Min(_call.M, rowBegin + _rowsPerThread);
        int panels = (_nc + TKernel.NR - 1) / TKernel.NR, tj = t % _threadColumns;
        int jBegin = (int)((long)panels * tj / _threadColumns) * TKernel.NR;
        int jEnd = Math.Min(_nc, (int)((long)panels * (tj + 1) / _threadColumns) * TKernel.NR);
        if (rowBegin >= rowEnd || jBegin >= jEnd) return;

        float beta = _pc == 0 ? _call.Beta : 1f;
        PackBuffer bufferA = PackBuffer.RentForA(_blocking.PackedAFloats);
        try
        {
            for (int ic = rowBegin; ic < rowEnd; ic += _blocking.Mc)
            {
                int mc = Math.Min(_blocking.Mc, rowEnd - ic);
                APacking.Pack(_call.TransA, _call.A, _call.Lda, ic, mc, _pc, _kc, TKernel.MR, bufferA.Pointer, TKernel.Isa);
                GemmDriver<TKernel>.MacroKernel(mc, _nc, _kc, bufferA.Pointer, _packedB,
                    _call.C + ic * _call.Ldc + _jc, _call.Ldc, _call.Alpha, beta, jBegin, jEnd);
            }
        }
        finally
        {
            bufferA.Return();
        }
    }
}
