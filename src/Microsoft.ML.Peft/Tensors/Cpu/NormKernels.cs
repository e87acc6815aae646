using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// Row-wise LayerNorm and RMSNorm over the last dimension of a contiguous [rows, d] tensor. Forward keeps one mean and
/// one reciprocal standard deviation per row for backward (statistics accumulated in double). Rows are independent,
/// so they are split across cores; the weight/bias gradients are column sums, computed in a second pass split by
/// column blocks so that no per-thread partial buffers are needed.
/// </summary>
internal static unsafe class NormKernels
{
    /// <summary>y = (x − mean)·rstd·w + b; writes mean (may be null for RMSNorm) and rstd per row.</summary>
    public static void Forward(float* x, float* w, float* b, float* y, float* mean, float* rstd, int rows, int d, float eps, bool rms)
    {
        nint px = (nint)x, pw = (nint)w, pb = (nint)b, py = (nint)y, pm = (nint)mean, pr = (nint)rstd;
        ParallelHelper.For(rows, 3L * d, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                var xr = new ReadOnlySpan<float>((float*)px + (long)r * d, d);
                var yr = new Span<float>((float*)py + (long)r * d, d);
                double mu = 0, sq = 0;
                if (!rms)
                {
                    for (int i = 0; i < d; i++) mu += xr[i];
                    mu /= d;
                }
                for (int i = 0; i < d; i++)
                {
                    double c = xr[i] - mu;
                    sq += c * c;
                }
                float inv = (float)(1.0 / Math.Sqrt(sq / d + eps));
                if (!rms) ((float*)pm)[r] = (float)mu;
                ((float*)pr)[r] = inv;
                if (rms) TensorPrimitives.Multiply(xr, inv, yr);
                else
                {
                    TensorPrimitives.Subtract(xr, (float)mu, yr);
                    TensorPrimitives.Multiply(yr, inv, yr);
                }
                if (pw != 0) TensorPrimitives.Multiply(yr, new ReadOnlySpan<float>((float*)pw, d), yr);
                if (pb != 0) TensorPrimitives.Add(yr, new ReadOnlySpan<float>((float*)pb, d), yr);
            }
        });
    }

    /// <summary>dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = g·w, x̂ = (x − mean)·rstd (RMSNorm: no mean terms).</summary>
    public static void BackwardInput(float* x, float* w, float* g, float* mean, float* rstd, float* dx, int rows, int d, bool rms)
    {
        nint px = (nint)x, pw = (nint)w, pg = (nint)g, pm = (nint)mean, pr = (nint)rstd, pdx = (nint)dx;
        ParallelHelper.For(rows, 4L * d, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                float* xr = (float*)px + (long)r * d, gr = (float*)pg + (long)r * d, dr = (float*)pdx + (long)r * d;
                float* wv = (float*)pw;
                float mu = rms ? 0f : ((float*)pm)[r];
                float inv = ((float*)pr)[r];
                double sumG = 0, sumGx = 0;
                for (int i = 0; i < d; i++)
                {
                    float gh = wv is null ? gr[i] : gr[i] * wv[i];
                    float xh = (xr[i] - mu) * inv;
                    sumG += gh;
                    sumGx += (double)gh * xh;
                }
                float meanG = rms ? 0f : (float)(sumG / d);
                float meanGx = (float)(sumGx / d);
                for (int i = 0; i < d; i++)
                {
                    float gh = wv is null ? gr[i] : gr[i] * wv[i];
                    float xh = (xr[i] - mu) * inv;
                    dr[i] = inv * (gh - meanG - xh * meanGx);
                }
            }
        });
    }

    /// <summary>dw[c] (+)= Σ_r g[r,c]·x̂[r,c] and db[c] (+)= Σ_r g[r,c]; either target may be null.</summary>
    public static void BackwardParams(float* x, float* g, float* mean, float* rstd, float* dw, bool accumulateW, float* db, bool accumulateB, int rows, int d, bool rms)
    {
        nint px = (nint)x, pg = (nint)g, pm = (nint)mean, pr = (nint)rstd, pdw = (nint)dw, pdb = (nint)db;
        const int Block = 256;
        int blocks = (d + Block - 1) / Block;
        ParallelHelper.For(blocks, (long)rows * Block * 2, (b0, b1) =>
        {
            Span<double> accW = stackalloc double[Block];
            Span<double> accB = stackalloc double[Block];
            for (int blk = b0; blk < b1; blk++)
            {
                int c0 = blk * Block, n = Math.Min(Block, d - c0);
                accW.Clear();
                accB.Clear();
                for (int r = 0; r < rows; r++)
                {
                    float* xr = (float*)px + (long)r * d + c0, gr = (float*)pg + (long)r * d + c0;
                    float mu = rms ? 0f : ((float*)pm)[r];
                    float inv = ((float*)pr)[r];
                    for (int i = 0; i < n; i++)
                    {
                        accW[i] += gr[i] * ((xr[i] - mu) * inv);
                        accB[i] += gr[i];
                    }
                }
                float* w = (float*)pdw, bb = (float*)pdb;
                for (int i = 0; i < n; i++)
                {
                    if (w is not null) w[c0 + i] = accumulateW ? w[c0 + i] + (float)accW[i] : (float)accW[i];
                    if (bb is not null) bb[c0 + i] = accumulateB ? bb[c0 + i] + (float)accB[i] : (float)accB[i];
                }
            }
        });
    }
}
