using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// Cross-entropy over rows of logits [rows, C]. Forward computes each row's log-sum-exp once (kept for backward)
/// and the row loss (1−ε)(−w_y·lp_y) + (ε/C)(−Σ_c w_c·lp_c) with lp = z − lse; the smoothing sum is
/// Σ w_c·z_c − lse·Σ w_c, one dot product. Backward writes, with the row coefficients
/// u_c = −[(1−ε)·w_y·[c = y] + (ε/C)·w_c], dz_c = s·(u_c − p_c·Σ_c' u_c') where p = softmax(z) and s is the upstream
/// gradient (divided by the weight sum for the mean). Rows are independent and split across cores (vocabulary-sized
/// rows of a language-model head dominate), exponentials are vectorised, row sums accumulate in double.
/// </summary>
internal static unsafe class CrossEntropyKernels
{
    /// <returns>Σ w_y over non-ignored rows (their count without weights): the mean's denominator.</returns>
    public static double Forward(float* x, int* targets, float* w, float* lse, float* loss, int rows, int c, int ignoreIndex, float smoothing)
    {
        double sumW = SumWeights(w, c);
        nint px = (nint)x, pt = (nint)targets, pw = (nint)w, pl = (nint)lse, pr = (nint)loss;
        ParallelHelper.For(rows, 2L * c, (r0, r1) =>
        {
            float* wv = (float*)pw;
            for (int i = r0; i < r1; i++)
            {
                var z = new ReadOnlySpan<float>((float*)px + (long)i * c, c);
                float max = TensorPrimitives.Max(z);
                double l = max + Math.Log(SumExpShifted(z, max));
                ((float*)pl)[i] = (float)l;
                int y = ((int*)pt)[i];
                if (y == ignoreIndex)
                {
                    ((float*)pr)[i] = 0f;
                    continue;
                }
                double wy = wv is null ? 1.0 : wv[y];
                double nll = -wy * (z[y] - l);
                double smooth = 0;
                if (smoothing != 0f)
                {
                    double dot = wv is null ? TensorPrimitives.Sum(z) : TensorPrimitives.Dot(new ReadOnlySpan<float>(wv, c), z);
                    smooth = -(dot - l * sumW);
                }
                ((float*)pr)[i] = (float)((1.0 - smoothing) * nll + smoothing / c * smooth);
            }
        });
        double weightSum = 0;
        for (int i = 0; i < rows; i++)
        {
            int y = targets[i];
            if (y != ignoreIndex) weightSum += w is null ? 1.0 : w[y];
        }
        return weightSum;
    }

    public static void Backward(float* x, int* targets, float* w, float* lse, float* g, bool perRow, float meanScale,
        float* dx, int rows, int c, int ignoreIndex, float smoothing)
    {
        double sumW = SumWeights(w, c);
        nint px = (nint)x, pt = (nint)targets, pw = (nint)w, pl = (nint)lse, pg = (nint)g, pd = (nint)dx;
        ParallelHelper.For(rows, 3L * c, (r0, r1) =>
        {
            float* wv = (float*)pw;
            for (int i = r0; i < r1; i++)
            {
                var d = new Span<float>((float*)pd + (long)i * c, c);
                int y = ((int*)pt)[i];
                if (y == ignoreIndex)
                {
                    d.Clear();
                    continue;
                }
                double s = (perRow ? ((float*)pg)[i] : ((float*)pg)[0]) * (double)meanScale;
                double wy = wv is null ? 1.0 : wv[y];
                double sumU = -((1.0 - smoothing) * wy + smoothing / c * sumW);
                // p = exp(z − lse), then d = −s·ΣU·p + s·u.
                TensorPrimitives.Subtract(new ReadOnlySpan<float>((float*)px + (long)i * c, c), ((float*)pl)[i], d);
                TensorPrimitives.Exp(d, d);
                TensorPrimitives.Multiply(d, (float)(-s * sumU), d);
                if (smoothing != 0f)
                {
                    float smoothTerm = (float)(-s * smoothing / c);
                    if (wv is null) TensorPrimitives.Add(d, smoothTerm, d);
                    else TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(wv, c), smoothTerm, d, d);
                }
                d[y] += (float)(-s * (1.0 - smoothing) * wy);
            }
        });
    }

    private static double SumWeights(float* w, int c)
    {
        if (w is null) return c;
        double sum = 0;
        for (int k = 0; k < c; k++) sum += w[k];
        return sum;
    }

    /// <summary>Σ exp(z − max) with vectorised exponentials on a stack buffer and a double accumulator.</summary>
    private static double SumExpShifted(ReadOnlySpan<float> z, float max)
    {
        Span<float> tmp = stackalloc float[512];
        double sum = 0;
        for (int i = 0; i < z.Length; i += tmp.Length)
        {
            int m = Math.Min(tmp.Length, z.Length - i);
            var chunk = tmp[..m];
            TensorPrimitives.Subtract(z.Slice(i, m), max, chunk);
            TensorPrimitives.Exp(chunk, chunk);
            sum += TensorPrimitives.Sum<float>(chunk);
        }
        return sum;
    }
}
