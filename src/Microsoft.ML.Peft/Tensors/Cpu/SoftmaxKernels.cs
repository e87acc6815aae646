using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// Row-wise softmax and log-softmax over the last dimension of contiguous [rows, n] data, numerically stable
/// (subtract the row max before exponentiating), vectorised with TensorPrimitives, rows split across cores.
/// </summary>
internal static unsafe class SoftmaxKernels
{
    public static void Forward(float* x, float* y, int rows, int n, bool log)
    {
        nint px = (nint)x, py = (nint)y;
        ParallelHelper.For(rows, 3L * n, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                var xr = new ReadOnlySpan<float>((float*)px + (long)r * n, n);
                var yr = new Span<float>((float*)py + (long)r * n, n);
                float max = TensorPrimitives.Max(xr);
                if (float.IsNegativeInfinity(max))
                {
                    // Every entry is −∞: PyTorch yields NaN for the whole row; keep that contract.
                    yr.Fill(float.NaN);
                    continue;
                }
                TensorPrimitives.Subtract(xr, max, yr);
                if (log)
                {
                    // log_softmax = (x − max) − log Σ exp(x − max); the exps go through a temporary pass on y.
                    float sum = SumExp(yr);
                    TensorPrimitives.Subtract(yr, MathF.Log(sum), yr);
                }
                else
                {
                    TensorPrimitives.Exp(yr, yr);
                    float sum = TensorPrimitives.Sum<float>(yr);
                    TensorPrimitives.Multiply(yr, 1f / sum, yr);
                }
            }
        });
    }

    /// <summary>softmax: dx = y·(g − Σ g·y); log_softmax: dx = g − exp(y)·Σ g.</summary>
    public static void Backward(float* y, float* g, float* dx, int rows, int n, bool log)
    {
        nint py = (nint)y, pg = (nint)g, pd = (nint)dx;
        ParallelHelper.For(rows, 3L * n, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                var yr = new ReadOnlySpan<float>((float*)py + (long)r * n, n);
                var gr = new ReadOnlySpan<float>((float*)pg + (long)r * n, n);
                var dr = new Span<float>((float*)pd + (long)r * n, n);
                if (log)
                {
                    float sumG = TensorPrimitives.Sum(gr);
                    TensorPrimitives.Exp(yr, dr);
                    TensorPrimitives.Multiply(dr, -sumG, dr);
                    TensorPrimitives.Add(dr, gr, dr);
                }
                else
                {
                    float dot = TensorPrimitives.Dot(gr, yr);
                    TensorPrimitives.Subtract(gr, dot, dr);
                    TensorPrimitives.Multiply(dr, yr, dr);
                }
            }
        });
    }

    /// <summary>Σ exp(v) for a row already shifted by its max, without modifying v (chunked through a stack buffer).</summary>
    internal static float SumExp(ReadOnlySpan<float> v)
    {
        Span<float> tmp = stackalloc float[256];
        double sum = 0;
        for (int i = 0; i < v.Length; i += tmp.Length)
        {
            int m = Math.Min(tmp.Length, v.Length - i);
            TensorPrimitives.Exp(v.Slice(i, m), tmp[..m]);
            sum += TensorPrimitives.Sum<float>(tmp[..m]);
        }
        return (float)sum;
    }
}
