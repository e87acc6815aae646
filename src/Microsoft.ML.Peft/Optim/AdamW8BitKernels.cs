using Microsoft.ML.Peft.Quantization;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Optim;

/// <summary>The per-element AdamW step shared by every state storage, and its 8-bit blockwise form.</summary>
internal static class AdamW8BitKernels
{
    /// <summary>Scalars of one step (already in float32, as <see cref="AdamW"/> computes them).</summary>
    internal readonly struct StepConstants(double learningRate, double weightDecay, double beta1, double beta2, double eps, int step)
    {
        public readonly float Decay = (float)(1 - learningRate * weightDecay);
        public readonly float Beta1 = (float)beta1;
        public readonly float OneMinusBeta1 = (float)(1 - beta1);
        public readonly float Beta2 = (float)beta2;
        public readonly float OneMinusBeta2 = (float)(1 - beta2);
        public readonly float NegStepSize = (float)-(learningRate / (1 - Math.Pow(beta1, step)));
        public readonly float BiasCorrection2Sqrt = (float)Math.Sqrt(1 - Math.Pow(beta2, step));
        public readonly float Eps = (float)eps;
    }

    /// <summary>
    /// p ← p·(1 − lr·wd); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; p ← p − (lr/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + ε),
    /// in exactly <see cref="AdamW"/>'s float32 operation order, so float32 states (in memory or paged) give
    /// bit-identical parameters.
    /// </summary>
    public static void Update(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, in StepConstants c)
    {
        for (int i = 0; i < p.Length; i++)
        {
            float gi = g[i];
            float pi = p[i] * c.Decay;
            float mi = m[i] * c.Beta1 + c.OneMinusBeta1 * gi;
            float vi = v[i] * c.Beta2 + c.OneMinusBeta2 * gi * gi;
            float denom = MathF.Sqrt(vi) / c.BiasCorrection2Sqrt + c.Eps;
            m[i] = mi;
            v[i] = vi;
            p[i] = pi + c.NegStepSize * mi / denom;
        }
    }

    /// <summary>
    /// The same step with 8-bit states, one quantization block at a time (bitsandbytes' blockwise 8-bit optimizer):
    /// decode the block's m (signed map) and v (unsigned map) into L1-resident scratch, update in fp32, re-encode
    /// with fresh absmax values. Blocks are independent, so they run in parallel; nothing is allocated.
    /// </summary>
    public static unsafe void UpdateEightBit(Span<float> p, ReadOnlySpan<float> g,
        byte* mCodes, float* mAbsmax, byte* vCodes, float* vAbsmax,
        BlockwiseDynamicQuantizer signed, BlockwiseDynamicQuantizer unsigned, StepConstants c)
    {
        int n = p.Length, blockSize = signed.BlockSize;
        int blocks = BlockwiseDynamicQuantizer.BlockCount(n, blockSize);
        fixed (float* pp = p)
        fixed (float* pg = g)
        {
            nint pAddress = (nint)pp, gAddress = (nint)pg, mc = (nint)mCodes, ma = (nint)mAbsmax, vc = (nint)vCodes, va = (nint)vAbsmax;
            // ~40 ns per element for decode + update + encode of both moments.
            ParallelHelper.For(blocks, 40L * blockSize, (b0, b1) =>
            {
                Span<float> m = stackalloc float[blockSize];
                Span<float> v = stackalloc float[blockSize];
                for (int b = b0; b < b1; b++)
                {
                    int start = b * blockSize, count = Math.Min(blockSize, n - start);
                    var mBlock = new Span<byte>((byte*)mc + start, count);
                    var vBlock = new Span<byte>((byte*)vc + start, count);
                    var mAbs = new Span<float>((float*)ma + b, 1);
                    var vAbs = new Span<float>((float*)va + b, 1);
                    var mValues = m[..count];
                    var vValues = v[..count];
                    signed.Dequantize(mBlock, mAbs, mValues);
                    unsigned.Dequantize(vBlock, vAbs, vValues);
                    Update(new Span<float>((float*)pAddress + start, count), new ReadOnlySpan<float>((float*)gAddress + start, count), mValues, vValues, c);
                    signed.Quantize(mValues, mBlock, mAbs);
                    unsigned.Quantize(vValues, vBlock, vAbs);
                }
            });
        }
    }
}
