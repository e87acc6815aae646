using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// Packs a block of op(A) into the micro-kernel's layout: consecutive micro-panels of <c>mr</c> rows; inside a panel,
/// k step p holds the mr values <c>op(A)[row + r, p]</c> contiguously, so the kernel reads A strictly sequentially.
/// Rows past the block end are zero-filled.
/// </summary>
internal static unsafe class APacking
{
    /// <summary>
    /// Packs <c>op(A)[i0 .. i0+mc, p0 .. p0+kc]</c> to <paramref name="dest"/>: panel q (rows i0 + q·mr ..) starts at
    /// <c>dest + q·mr·kc</c>. Needs 16 writable floats of slack past the last panel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Pack(bool transA, float* a, nint lda, int i0, int mc, int p0, int kc, int mr, float* dest, GemmIsa isa)
    {
        for (int q = 0; q < mc; q += mr)
        {
            int rows = Math.Min(mr, mc - q);
            float* panel = dest + (nint)q * kc;
            if (transA)
                PackPanelFromColumns(a + (nint)p0 * lda + i0 + q, lda, rows, kc, mr, panel);
            else if (isa == GemmIsa.Avx512 && mr <= 16)
                PackPanelFromRowsAvx512(a + (nint)(i0 + q) * lda + p0, lda, rows, kc, mr, panel);
            else
                PackPanelFromRows(a + (nint)(i0 + q) * lda + p0, lda, rows, kc, mr, panel);
        }
    }

    /// <summary>A not transposed: panel element (p, r) = src[r·lda + p] — a transpose, done 16×16 in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackPanelFromRowsAvx512(float* src, nint lda, int rows, int kc, int mr, float* panel)
    {
        int p = 0;
        for (; p + 16 <= kc; p += 16)
            Transpose16.Block(src + p, lda, rows, panel + (nint)p * mr, mr);
        PackRowsTail(src, lda, rows, p, kc, mr, panel);
    }

    /// <summary>A not transposed, element by element.</summary>
    private static void PackPanelFromRows(float* src, nint lda, int rows, int kc, int mr, float* panel) =>
        PackRowsTail(src, lda, rows, 0, kc, mr, panel);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackRowsTail(float* src, nint lda, int rows, int pBegin, int kc, int mr, float* panel)
    {
        for (int p = pBegin; p < kc; p++)
        {
            float* d = panel + (nint)p * mr;
            int r = 0;
            for (; r < rows; r++) d[r] = src[r * lda + p];
            for (; r < mr; r++) d[r] = 0f;
        }
    }

    /// <summary>A transposed: the mr values of k step p are contiguous in memory (src + p·lda), a plain copy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackPanelFromColumns(float* src, nint lda, int rows, int kc, int mr, float* panel)
    {
        if (rows == 14 && mr == 14 && Vector256.IsHardwareAccelerated)
        {
            // Two overlapping 8-float copies cover exactly 14 floats without reading past the row.
            for (int p = 0; p < kc; p++)
            {
                float* s = src + p * lda;
                float* d = panel + (nint)p * 14;
                Vector256<float> lo = Vector256.Load(s), hi = Vector256.Load(s + 6);
                lo.Store(d);
                hi.Store(d + 6);
            }
            return;
        }

        for (int p = 0; p < kc; p++)
            CopyPadded(src + p * lda, rows, panel + (nint)p * mr, mr);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyPadded(float* s, int count, float* d, int width)
    {
        int r = 0;
        for (; r < count; r++) d[r] = s[r];
        for (; r < width; r++) d[r] = 0f;
    }
}
