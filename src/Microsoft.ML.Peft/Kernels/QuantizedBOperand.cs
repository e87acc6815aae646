using System.Runtime.CompilerServices;
using Microsoft.ML.Peft.Quantization;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// A frozen 4-bit weight W [out, in] (<see cref="QuantizedTensor4Bit"/>, any code book, with or without double
/// quantization) as the B operand of the packed SGEMM. Packing dequantizes the requested row segments of W into a
/// small stack scratch and lays them out as panels, so the full fp32 weight is never materialised: memory traffic is
/// 4.1–4.5 bits per weight instead of 32, and the dequantization is amortised over all rows of A that share a panel.
/// </summary>
/// <remarks>
/// <para>
/// <c>transposed: true</c> is the forward product y = x·Wᵀ: op(B) = Wᵀ, so k = in (W's columns) and n = out (W's rows);
/// a panel of nr output columns is nr rows of W, each decoded over [k0, k0 + kc) and transposed into the panel.
/// <c>transposed: false</c> is the input gradient dX = dY·W: op(B) = W, k = out, n = in; each k step p is one row
/// segment of W, decoded and scattered across the panels.
/// </para>
/// <para>
/// The packed values are exactly <c>QuantMap[code] · scale</c> (the same fp32 products that
/// <see cref="QuantizedTensor4Bit.Dequantize()"/> yields), so a product through this operand is bit-identical to the same
/// GEMM over a <see cref="Float32BOperand"/> holding the dequantized weight.
/// </para>
/// </remarks>
public sealed class QuantizedBOperand : GemmBOperand
{
    // 32 KB of stack: large enough that a whole panel (32 rows of W × 256 k steps) decodes in one pass.
    private const int ScratchFloats = 8192;

    /// <summary>Wraps a 2-D quantized weight.</summary>
    /// <param name="weight">The weight, shape [out, in].</param>
    /// <param name="transposed">True for op(B) = Wᵀ (forward, y = x·Wᵀ); false for op(B) = W (input gradient).</param>
    /// <exception cref="ArgumentException">The weight is not 2-D.</exception>
    public QuantizedBOperand(QuantizedTensor4Bit weight, bool transposed)
        : base(RowsOf(weight, transposed), ColumnsOf(weight, transposed))
    {
        Weight = weight;
        Transposed = transposed;
    }

    /// <summary>The quantized weight W [out, in].</summary>
    public QuantizedTensor4Bit Weight { get; }

    /// <summary>True when op(B) = Wᵀ.</summary>
    public bool Transposed { get; }

    /// <inheritdoc/>
    [SkipLocalsInit]
    protected override unsafe void PackPanelsCore(int rowStart, int rowCount, int columnStart, int columnCount, int panelWidth, Span<float> destination)
    {
        if (rowCount == 0 || columnCount == 0) return;
        float* scratch = stackalloc float[ScratchFloats];
        var isa = GemmIsaInfo.Best;
        fixed (float* dest = destination)
        {
            if (Transposed)
                PackTransposed(rowStart, rowCount, columnStart, columnCount, panelWidth, dest, scratch, isa);
            else
                PackRows(rowStart, rowCount, columnStart, columnCount, panelWidth, dest, scratch, isa);
        }
    }

    /// <summary>op(B) = Wᵀ: panel j holds W rows [n0 + j, n0 + j + nr), decoded over k range chunks, then transposed.</summary>
    private unsafe void PackTransposed(int k0, int kc, int n0, int nc, int nr, float* dest, float* scratch, GemmIsa isa)
    {
        nint panelStride = (nint)kc * nr;
        int chunkDepth = Math.Max(1, ScratchFloats / nr);
        for (int j = 0; j < nc; j += nr)
        {
            int width = Math.Min(nr, nc - j);
            float* panel = dest + j / nr * panelStride;
            for (int p0 = 0; p0 < kc; p0 += chunkDepth)
            {
                int depth = Math.Min(chunkDepth, kc - p0);
                for (int q = 0; q < width; q++)
                    Weight.DequantizeRowSegment(n0 + j + q, k0 + p0, new Span<float>(scratch + q * depth, depth));
                BPacking.PackPanelFromColumns(scratch, depth, width, depth, nr, panel + (nint)p0 * nr, isa);
            }
        }
    }

    /// <summary>op(B) = W: k step p is W row k0 + p, decoded over [n0, n0 + nc) in chunks and scattered into the panels.</summary>
    private unsafe void PackRows(int k0, int kc, int n0, int nc, int nr, float* dest, float* scratch, GemmIsa isa)
    {
        nint panelStride = (nint)kc * nr;
        int chunkColumns = Math.Max(1, ScratchFloats / nr) * nr;
        for (int j0 = 0; j0 < nc; j0 += chunkColumns)
        {
            int width = Math.Min(chunkColumns, nc - j0);
            float* chunkDest = dest + j0 / nr * panelStride;
            for (int p = 0; p < kc; p++)
            {
                Weight.DequantizeRowSegment(k0 + p, n0 + j0, new Span<float>(scratch, width));
                BPacking.PackOneRow(scratch, width, nr, chunkDest + (nint)p * nr, panelStride, isa);
            }
        }
    }

    private static int RowsOf(QuantizedTensor4Bit weight, bool transposed)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Shape.Length != 2)
            throw new ArgumentException($"A quantized GEMM operand needs a 2-D weight [out, in]; got shape [{string.Join(", ", weight.Shape)}].", nameof(weight));
        return transposed ? weight.Columns : weight.Rows;
    }

    private static int ColumnsOf(QuantizedTensor4Bit weight, bool transposed) => transposed ? weight.Rows : weight.Columns;
}
