using System.Runtime.CompilerServices;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// The GotoBLAS/BLIS loop nest around a micro-kernel: jc over nc-column panels of B, pc over kc-deep slices (each packed
/// B panel is shared by all threads), ic over mc-row blocks of A (packed per thread), then the macro-kernel's jr/ir
/// loops over NR×MR register tiles. The JIT specialises it per kernel and B source, so the tile sizes are constants.
/// </summary>
internal static unsafe class GemmDriver<TKernel>
    where TKernel : struct, IMicroKernel
{
    /// <summary>Runs the product on the calling thread only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunSingleThreaded<TB>(in GemmCall call, TB b)
        where TB : struct, IBPanelSource
    {
        Blocking blocking = Blocking.For<TKernel>(call.M, call.N, call.K, b.RowGranularity);
        PackBuffer bufferB = PackBuffer.RentForB(blocking.PackedBFloats);
        PackBuffer bufferA = PackBuffer.RentForA(blocking.PackedAFloats);
        try
        {
            float* packedA = bufferA.Pointer, packedB = bufferB.Pointer;
            for (int jc = 0; jc < call.N; jc += blocking.Nc)
            {
                int nc = Math.Min(blocking.Nc, call.N - jc);
                for (int pc = 0; pc < call.K; pc += blocking.Kc)
                {
                    int kc = Math.Min(blocking.Kc, call.K - pc);
                    float beta = pc == 0 ? call.Beta : 1f;
                    b.Pack(pc, kc, jc, nc, TKernel.NR, packedB, TKernel.Isa);
                    for (int ic = 0; ic < call.M; ic += blocking.Mc)
                    {
                        int mc = Math.Min(blocking.Mc, call.M - ic);
                        APacking.Pack(call.TransA, call.A, call.Lda, ic, mc, pc, kc, TKernel.MR, packedA, TKernel.Isa);
                        MacroKernel(mc, nc, kc, packedA, packedB, call.C + ic * call.Ldc + jc, call.Ldc, call.Alpha, beta, 0, nc);
                    }
                }
            }
        }
        finally
        {
            bufferA.Return();
            bufferB.Return();
        }
    }

    /// <summary>
    /// Multiplies the packed block (mc×kc of A, kc×nc of B) into C for the B columns [jBegin, jEnd) of the block
    /// (multiples of NR except at the block end). Tiles go straight to C, edge rows through the kernel's smaller
    /// variants; tiles cut by the column edge go through a stack tile.
    /// </summary>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MacroKernel(int mc, int nc, int kc, float* packedA, float* packedB, float* c, nint ldc,
        float alpha, float beta, int jBegin, int jEnd)
    {
        int mr = TKernel.MR, nr = TKernel.NR;
        float* tile = stackalloc float[TKernel.MR * TKernel.NR];
        for (int jr = jBegin; jr < jEnd; jr += nr)
        {
            int width = Math.Min(nr, nc - jr);
            float* panelB = packedB + (nint)jr * kc;
            for (int ir = 0; ir < mc; ir += mr)
            {
                int height = Math.Min(mr, mc - ir);
                float* panelA = packedA + (nint)ir * kc;
                float* target = c + ir * ldc + jr;
                if (width == nr)
                {
                    if (height == mr) TKernel.Run(kc, panelA, panelB, target, ldc, alpha, beta);
                    else TKernel.RunRows(height, kc, panelA, panelB, target, ldc, alpha, beta);
                }
                else
                {
                    // A partial column panel would overrun C's row: compute it into the stack tile and copy.
                    TKernel.RunRows(height, kc, panelA, panelB, tile, nr, 1f, 0f);
                    MergeEdgeTile(tile, nr, height, width, target, ldc, alpha, beta);
                }
            }
        }
    }

    /// <summary>C[0..height, 0..width) = alpha·tile + beta·C, not reading C when beta is 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MergeEdgeTile(float* tile, int tileStride, int height, int width, float* c, nint ldc, float alpha, float beta)
    {
        for (int i = 0; i < height; i++)
        {
            float* source = tile + i * tileStride;
            float* target = c + i * ldc;
            if (beta == 0f)
            {
                for (int j = 0; j < width; j++) target[j] = alpha * source[j];
            }
            else
            {
                for (int j = 0; j < width; j++) target[j] = alpha * source[j] + beta * target[j];
            }
        }
    }
}
