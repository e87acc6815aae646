using System.Runtime.Intrinsics;
using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// GELU, erf form: y = x·Φ(x) with Φ in double precision (see <see cref="NormalDistribution"/>), 16 floats per
/// iteration on AVX-512 (widened to two vectors of 8 doubles); scalar double elsewhere.
/// </summary>
internal readonly struct GeluMap : IUnaryMap
{
    public void Invoke(ReadOnlySpan<float> x, Span<float> d)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= x.Length - 16; i += 16)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Create(x.Slice(i, 16)));
                Vector512.Narrow(lo * NormalDistribution.Cdf(lo), hi * NormalDistribution.Cdf(hi)).CopyTo(d.Slice(i, 16));
            }
        }
        for (; i < x.Length; i++) d[i] = (float)(x[i] * NormalDistribution.Cdf(x[i]));
    }
}

/// <summary>GELU (erf) backward: d = g·(Φ(x) + x·φ(x)), φ(x) = e^(−x²/2)/√(2π), in double.</summary>
internal readonly struct GeluBackwardMap : IBinaryMap
{
    public void Invoke(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> d)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= x.Length - 16; i += 16)
            {
                var (xl, xh) = Vector512.Widen(Vector512.Create(x.Slice(i, 16)));
                var (gl, gh) = Vector512.Widen(Vector512.Create(g.Slice(i, 16)));
                var cl = NormalDistribution.Cdf(xl, out var pl);
                var ch = NormalDistribution.Cdf(xh, out var ph);
                Vector512.Narrow(gl * Vector512.FusedMultiplyAdd(xl, pl, cl), gh * Vector512.FusedMultiplyAdd(xh, ph, ch)).CopyTo(d.Slice(i, 16));
            }
        }
        for (; i < x.Length; i++)
        {
            double v = x[i];
            d[i] = (float)(g[i] * (NormalDistribution.Cdf(v) + v * NormalDistribution.InvSqrt2Pi * Math.Exp(-0.5 * v * v)));
        }
    }
}

/// <summary>GELU, tanh form (as PyTorch approximate='tanh', in float): y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).</summary>
internal readonly struct GeluTanhMap : IUnaryMap
{
    internal const float Kappa = 0.044715f;
    internal const float Beta = 0.7978845608028654f; // √(2/π)

    public void Invoke(ReadOnlySpan<float> x, Span<float> d)
    {
        for (int i = 0; i < x.Length; i++) d[i] = Beta * (x[i] + Kappa * x[i] * x[i] * x[i]);
        TensorPrimitives.Tanh(d, d);
        for (int i = 0; i < x.Length; i++) d[i] = 0.5f * x[i] * (1f + d[i]);
    }
}

/// <summary>GELU (tanh) backward: ½(1+t) + ½x(1−t²)·√(2/π)(1 + 3·0.044715x²), t = tanh(u).</summary>
internal readonly struct GeluTanhBackwardMap : IBinaryMap
{
    public void Invoke(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> d)
    {
        const float k = GeluTanhMap.Kappa, b = GeluTanhMap.Beta;
        for (int i = 0; i < x.Length; i++) d[i] = b * (x[i] + k * x[i] * x[i] * x[i]);
        TensorPrimitives.Tanh(d, d);
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i], t = d[i];
            float left = 0.5f * (1f + t);
            float right = 0.5f * v * (1f - t * t) * b * (1f + 3f * k * v * v);
            d[i] = g[i] * (left + right);
        }
    }
}

/// <summary>SiLU: y = x·σ(x).</summary>
internal readonly struct SiluMap : IUnaryMap
{
    public void Invoke(ReadOnlySpan<float> x, Span<float> d)
    {
        TensorPrimitives.Sigmoid(x, d);
        TensorPrimitives.Multiply(d, x, d);
    }
}

/// <summary>SiLU backward: g·σ(x)·(1 + x(1 − σ(x))).</summary>
internal readonly struct SiluBackwardMap : IBinaryMap
{
    public void Invoke(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> d)
    {
        TensorPrimitives.Sigmoid(x, d);
        for (int i = 0; i < x.Length; i++)
        {
            float s = d[i];
            d[i] = g[i] * s * (1f + x[i] * (1f - s));
        }
    }
}

/// <summary>ReLU backward: g where x &gt; 0, else 0.</summary>
internal readonly struct ReluBackwardMap : IBinaryMap
{
    public void Invoke(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> d)
    {
        for (int i = 0; i < x.Length; i++) d[i] = x[i] > 0f ? g[i] : 0f;
    }
}

/// <summary>tanh backward from the output: g·(1 − y²).</summary>
internal readonly struct TanhBackwardMap : IBinaryMap
{
    public void Invoke(ReadOnlySpan<float> y, ReadOnlySpan<float> g, Span<float> d)
    {
        for (int i = 0; i < y.Length; i++) d[i] = g[i] * (1f - y[i] * y[i]);
    }
}

/// <summary>sigmoid backward from the output: g·y·(1 − y).</summary>
internal readonly struct SigmoidBackwardMap : IBinaryMap
{
    public void Invoke(ReadOnlySpan<float> y, ReadOnlySpan<float> g, Span<float> d)
    {
        for (int i = 0; i < y.Length; i++) d[i] = g[i] * y[i] * (1f - y[i]);
    }
}
