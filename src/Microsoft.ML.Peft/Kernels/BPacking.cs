using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// Packs fp32 blocks of op(B) into the micro-kernel's layout: consecutive micro-panels of <c>nr</c> columns; inside a
/// panel, k step p holds the nr values <c>op(B)[p, col + j]</c> contiguously (one or two aligned vectors for the
/// kernel). Columns past the block end are zero-filled.
/// </summary>
/// <remarks>
/// The layout contract (also the one <see cref="GemmBOperand.PackPanels"/> implementers follow): for a kc×nc block,
/// panel q starts at <c>dest + q·kc·nr</c> and element (p, j) of the panel is at <c>p·nr + j</c>.
/// </remarks>
internal static unsafe class BPacking
{
    /// <summary>
    /// Packs rows of B when B is stored k×n (not transposed): <c>op(B)[p, j] = b[p·ldb + j]</c>, with
    /// <paramref name="b"/> already pointing at element (p0, n0) of the block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackFromRows(float* b, nint ldb, int kc, int nc, int nr, float* dest, GemmIsa isa)
    {
        for (int p = 0; p < kc; p++)
            PackOneRow(b + p * ldb, nc, nr, dest + (nint)p * nr, (nint)kc * nr, isa);
    }

    /// <summary>
    /// Scatters one row segment of op(B) (nc contiguous values) into k step p of every panel: panel q's part goes to
    /// <c>dest + q·panelStride</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void PackOneRow(float* row, int nc, int nr, float* dest, nint panelStride, GemmIsa isa)
    {
        int j = 0;
        if (isa == GemmIsa.Avx512 && nr == 32)
        {
            for (; j + 32 <= nc; j += 32, dest += panelStride)
            {
                Vector512.Load(row + j).StoreAligned(dest);
                Vector512.Load(row + j + 16).StoreAligned(dest + 16);
            }
        }
        else if (isa != GemmIsa.Scalar && nr == 16)
        {
            for (; j + 16 <= nc; j += 16, dest += panelStride)
            {
                Vector256.Load(row + j).StoreAligned(dest);
                Vector256.Load(row + j + 8).StoreAligned(dest + 8);
            }
        }

        for (; j < nc; j += nr, dest += panelStride)
        {
            int width = Math.Min(nr, nc - j);
            int q = 0;
            for (; q < width; q++) dest[q] = row[j + q];
            for (; q < nr; q++) dest[q] = 0f;
        }
    }

    /// <summary>
    /// Packs columns of B when B is stored n×k (transposed): <c>op(B)[p, j] = b[j·ldb + p]</c>, with
    /// <paramref name="b"/> pointing at element (p0, n0) of op(B). 
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackFromColumns(float* b, nint ldb, int kc, int nc, int nr, float* dest, GemmIsa isa)
    {
        for (int j = 0; j < nc; j += nr)
            PackPanelFromColumns(b + j * ldb, ldb, Math.Min(nr, nc - j), kc, nr, dest + (nint)j * kc, isa);
    }

    /// <summary>One panel of <paramref name="width"/> ≤ nr columns from transposed storage, zero-padded to nr.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackPanelFromColumns(float* src, nint ldb, int width, int kc, int nr, float* panel, GemmIsa isa)
    {
        int p = 0;
        if (isa == GemmIsa.Avx512 && nr % 16 == 0)
        {
            for (; p + 16 <= kc; p += 16)
            {
                for (int j = 0; j < nr; j += 16)
                {
                    int rows = Math.Clamp(width - j, 0, 16);
                    Transpose16.Block(src + j * ldb + p, ldb, rows, panel + (nint)p * nr + j, nr);
                }
            }
        }

        for (; p < kc; p++)
        {
            float* d = panel + (nint)p * nr;
            int j = 0;
            for (; j < width; j++) d[j] = src[j * ldb + p];
            for (; j < nr; j++) d[j] = 0f;
        }
    }
}
