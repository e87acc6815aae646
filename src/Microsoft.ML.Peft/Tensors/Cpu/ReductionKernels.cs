using System.Numerics;
using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// Reductions of a contiguous tensor viewed as [outer, R, inner] over the middle dimension.
/// inner = 1 (reducing the last axes) sums each row with TensorPrimitives; inner &gt; 1 (e.g. bias gradients: sum
/// over the batch rows) adds whole rows, accumulating in double so that long reductions keep float precision.
/// Work is split over outer slices, or over column ranges when there is a single slice.
/// </summary>
internal static unsafe class ReductionKernels
{
    public static void Sum(float* x, float* y, int outer, int r, int inner)
    {
        nint px = (nint)x, py = (nint)y;
        if (inner == 1)
        {
            ParallelHelper.For(outer, r, (o0, o1) =>
            {
                for (int o = o0; o < o1; o++) ((float*)py)[o] = TensorPrimitives.Sum(new ReadOnlySpan<float>((float*)px + (long)o * r, r));
            });
            return;
        }
        if (outer >= ParallelHelper.Workers || (long)outer * r * inner < ParallelHelper.MinParallelElements)
        {
            ParallelHelper.For(outer, (long)r * inner, (o0, o1) =>
            {
                for (int o = o0; o < o1; o++) SumColumns((float*)px + (long)o * r * inner, (float*)py + (long)o * inner, r, inner, 0, inner);
            });
            return;
        }
        for (int o = 0; o < outer; o++)
        {
            nint xs = px + (nint)((long)o * r * inner * sizeof(float)), ys = py + (nint)((long)o * inner * sizeof(float));
            ParallelHelper.For(inner, r, (c0, c1) => SumColumns((float*)xs, (float*)ys, r, inner, c0, c1));
        }
    }

    /// <summary>y[c] = Σ_k x[k·inner + c] for c in [c0, c1), accumulated in double.</summary>
    private static void SumColumns(float* x, float* y, int r, int inner, int c0, int c1)
    {
        const int Block = 512;
        Span<double> acc = stackalloc double[Block];
        for (int b0 = c0; b0 < c1; b0 += Block)
        {
            int m = Math.Min(Block, c1 - b0);
            var a = acc[..m];
            a.Clear();
            for (int k = 0; k < r; k++) AddWidened(new ReadOnlySpan<float>(x + (long)k * inner + b0, m), a);
            for (int i = 0; i < m; i++) y[b0 + i] = (float)a[i];
        }
    }

    private static void AddWidened(ReadOnlySpan<float> row, Span<double> acc)
    {
        int i = 0;
        int w = Vector<float>.Count;
        for (; i <= row.Length - w; i += w)
        {
            Vector.Widen(new Vector<float>(row[i..]), out var lo, out var hi);
            (new Vector<double>(acc[i..]) + lo).CopyTo(acc[i..]);
            (new Vector<double>(acc[(i + w / 2)..]) + hi).CopyTo(acc[(i + w / 2)..]);
        }
        for (; i < row.Length; i++) acc[i] += row[i];
    }

    /// <summary>Max over the middle dimension with the index of the first maximum (NaN propagates, as in PyTorch).</summary>
    public static void Max(float* x, float* y, int* index, int outer, int r, int inner)
    {
        for (int o = 0; o < outer; o++)
        {
            float* xs = x + (long)o * r * inner;
            for (int c = 0; c < inner; c++)
            {
                float best = xs[c];
                int arg = 0;
                for (int k = 1; k < r && !float.IsNaN(best); k++)
                {
                    float v = xs[(long)k * inner + c];
                    if (v > best || float.IsNaN(v))
                    {
                        best = v;
                        arg = k;
                    }
                }
                y[(long)o * inner + c] = best;
                index[(long)o * inner + c] = arg;
            }
        }
    }
}
