using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// fp32 products with at most <see cref="MaxRows"/> rows (a matrix–vector product when generating one token at a time)
/// on AVX-512: B is read in place by <see cref="SkinnyKernelsAvx512"/> instead of being packed, and threads, when the
/// product is large enough, split the columns.
/// </summary>
internal static unsafe class SkinnyGemm
{
    public const int MaxRows = 8;

    public static bool Applies(GemmIsa isa, int m) => isa == GemmIsa.Avx512 && Avx512F.IsSupported && m <= MaxRows;

    public static void Run(in GemmCall call, float* b, nint ldb, bool transB, int maxThreads)
    {
        int threads = Gemm.ThreadsFor(call.M, call.N, call.K, maxThreads);
        int columnStep = transB ? 4 : 64;
        int steps = (call.N + columnStep - 1) / columnStep;
        threads = Math.Min(threads, steps);

        float* a = call.A;
        nint lda = call.Lda;
        PackBuffer? rowsOfA = null;
        if (transB && call.TransA)
        {
            // The dot-product kernel wants A's rows contiguous: gather the few columns of the stored k×m A (m·k floats).
            rowsOfA = PackBuffer.RentForA(call.M * call.K);
            for (int r = 0; r < call.M; r++)
                for (int p = 0; p < call.K; p++)
                    rowsOfA.Pointer[r * call.K + p] = call.A[p * call.Lda + r];
            a = rowsOfA.Pointer;
            lda = call.K;
        }

        try
        {
            var job = new Columns(call, a, lda, b, ldb, transB);
            if (threads <= 1)
                job.Run(0, call.N);
            else
                RunParallel(job, call.N, steps, columnStep, threads);
        }
        finally
        {
            rowsOfA?.Return();
        }
    }

    /// <summary>Thread t takes the t-th share of the column steps. Kept apart so that only this path allocates a closure.</summary>
    private static void RunParallel(Columns job, int n, int steps, int columnStep, int threads) =>
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int begin = (int)((long)steps * t / threads) * columnStep;
            int end = Math.Min(n, (int)((long)steps * (t + 1) / threads) * columnStep);
            job.Run(begin, end);
        });

    /// <summary>The product restricted to a column range; a struct so the parallel lambda can capture it.</summary>
    private readonly struct Columns(GemmCall call, float* a, nint lda, float* b, nint ldb, bool transB)
    {
        public void Run(int begin, int end)
        {
            // Passes of up to four rows, each streaming the column range of B once.
            for (int row = 0; row < call.M; row += 4)
            {
                if (begin >= end) return;
                switch (Math.Min(4, call.M - row))
                {
                    case 1: Run<Rows1>(row, begin, end); break;
                    case 2: Run<Rows2>(row, begin, end); break;
                    case 3: Run<Rows3>(row, begin, end); break;
                    default: Run<Rows4>(row, begin, end); break;
                }
            }
        }

        private void Run<TRows>(int row, int begin, int end)
            where TRows : struct, IRowCount
        {
            float* c = call.C + row * call.Ldc;
            if (transB)
            {
                SkinnyKernelsAvx512.RowsTimesBTransposed<TRows>(a + row * lda, lda, call.K, b, ldb, c, call.Ldc, begin, end, call.Alpha, call.Beta);
            }
            else
            {
                // A transposed (stored k×m) is read with swapped strides.
                nint aRow = call.TransA ? 1 : lda, aStep = call.TransA ? lda : 1;
                SkinnyKernelsAvx512.RowsTimesB<TRows>(a + row * aRow, aRow, aStep, call.K, b, ldb, c, call.Ldc, begin, end, call.Alpha, call.Beta);
            }
        }
    }
}
