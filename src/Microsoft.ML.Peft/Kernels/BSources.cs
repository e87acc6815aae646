using System.Runtime.CompilerServices;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>fp32 B, row-major with row stride ldb; stored n×k when transposed.</summary>
internal readonly unsafe struct F32BSource(float* b, nint ldb, bool transposed) : IBPanelSource
{
    public int RowGranularity => 1;

    public void Pack(int k0, int kc, int n0, int nc, int nr, float* dest, GemmIsa isa)
    {
        if (transposed)
            BPacking.PackFromColumns(b + n0 * ldb + k0, ldb, kc, nc, nr, dest, isa);
        else
            BPacking.PackFromRows(b + k0 * ldb + n0, ldb, kc, nc, nr, dest, isa);
    }
}

/// <summary>A storage precision that widens exactly to fp32.</summary>
internal unsafe interface IWidenableFormat<T> where T : unmanaged
{
    static abstract void Widen(T* src, float* dst, int count, GemmIsa isa);
}

/// <summary>bfloat16 stored as its raw 16 bits.</summary>
internal readonly unsafe struct Bf16Format : IWidenableFormat<ushort>
{
    public static void Widen(ushort* src, float* dst, int count, GemmIsa isa) => Widening.Bf16ToSingle(src, dst, count, isa);
}

/// <summary>IEEE 754 binary16.</summary>
internal readonly unsafe struct HalfFormat : IWidenableFormat<Half>
{
    public static void Widen(Half* src, float* dst, int count, GemmIsa isa) => Widening.HalfToSingle(src, dst, count, isa);
}

/// <summary>
/// B in a 16-bit storage format, widened to fp32 through a 32 KB stack scratch while packing: row segments when B is
/// stored k×n, or up to nr column segments of one panel when stored n×k, which then go through the fp32 packers.
/// </summary>
internal readonly unsafe struct WideningBSource<T, TFormat>(T* b, nint ldb, bool transposed) : IBPanelSource
    where T : unmanaged
    where TFormat : struct, IWidenableFormat<T>
{
    private const int ScratchFloats = 8192;

    public int RowGranularity => 1;

    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Pack(int k0, int kc, int n0, int nc, int nr, float* dest, GemmIsa isa)
    {
        float* scratch = stackalloc float[ScratchFloats];
        nint panelStride = (nint)kc * nr;
        if (!transposed)
        {
            int chunkColumns = Math.Max(1, ScratchFloats / nr) * nr;
            for (int j0 = 0; j0 < nc; j0 += chunkColumns)
            {
                int width = Math.Min(chunkColumns, nc - j0);
                float* chunkDest = dest + j0 / nr * panelStride;
                for (int p = 0; p < kc; p++)
                {
                    TFormat.Widen(b + (k0 + p) * ldb + n0 + j0, scratch, width, isa);
                    BPacking.PackOneRow(scratch, width, nr, chunkDest + (nint)p * nr, panelStride, isa);
                }
            }
            return;
        }

        int chunkDepth = ScratchFloats / nr;
        for (int j = 0; j < nc; j += nr)
        {
            int width = Math.Min(nr, nc - j);
            float* panel = dest + j / nr * panelStride;
            for (int p0 = 0; p0 < kc; p0 += chunkDepth)
            {
                int depth = Math.Min(chunkDepth, kc - p0);
                for (int q = 0; q < width; q++)
                    TFormat.Widen(b + (n0 + j + q) * ldb + k0 + p0, scratch + q * depth, depth, isa);
                BPacking.PackPanelFromColumns(scratch, depth, width, depth, nr, panel + (nint)p0 * nr, isa);
            }
        }
    }
}

/// <summary>Adapts a public <see cref="GemmBOperand"/> (for example a 4-bit format defined elsewhere) to the driver.</summary>
internal readonly unsafe struct ManagedBSource(GemmBOperand operand) : IBPanelSource
{
    public int RowGranularity { get; } = Math.Max(1, operand.RowGranularity);

    public void Pack(int k0, int kc, int n0, int nc, int nr, float* dest, GemmIsa isa)
    {
        int panels = (nc + nr - 1) / nr;
        operand.PackPanels(k0, kc, n0, nc, nr, new Span<float>(dest, panels * kc * nr));
    }
}
