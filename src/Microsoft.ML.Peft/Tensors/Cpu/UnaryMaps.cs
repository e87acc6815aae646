using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.Tensors;

internal readonly struct NegateMap : IUnaryMap
{
    public void Invoke(ReadOnlySpan<float> x, Span<float> d) => TensorPrimitives.Negate(x, d);
}

internal readonly struct ExpMap : IUnaryMap
{
    public void Invoke(ReadOnlySpan<float> x, Span<float> d) => TensorPrimitives.Exp(x, d);
}

internal readonly struct LogMap : IUnaryMap
{
    public void Invoke(ReadOnlySpan<float> x, Span<float> d) => TensorPrimitives.Log(x, d);
}

internal readonly struct SqrtMap : IUnaryMap
{
    public void Invoke(ReadOnlySpan<float> x, Span<float> d) => TensorPrimitives.Sqrt(x, d);
}

/// <summary>1/√x computed exactly (not the hardware estimate).</summary>
internal readonly struct RsqrtMap : IUnaryMap
{
    public void Invoke(ReadOnlySpan<float> x, Span<float> d)
    {
        TensorPrimitives.Sqrt(x, d);
        TensorPrimitives.Divide(1f, d, d);
    }
}

internal readonly struct TanhMap : IUnaryMap
{
    public void Invoke(ReadOnlySpan<float> x, Span<float> d) => TensorPrimitives.Tanh(x, d);
}

internal readonly struct SigmoidMap : IUnaryMap
{
    public void Invoke(ReadOnlySpan<float> x, Span<float> d) => TensorPrimitives.Sigmoid(x, d);
}

internal readonly struct ReluMap : IUnaryMap
{
    public void Invoke(ReadOnlySpan<float> x, Span<float> d) => TensorPrimitives.Max(x, 0f, d);
}

internal readonly struct AbsMap : IUnaryMap
{
    public void Invoke(ReadOnlySpan<float> x, Span<float> d) => TensorPrimitives.Abs(x, d);
}

/// <summary>x^p for a scalar exponent; squares and integral powers use multiplication like PyTorch's fast paths.</summary>
internal readonly struct PowMap(float exponent) : IUnaryMap
{
    public void Invoke(ReadOnlySpan<float> x, Span<float> d)
    {
        switch (exponent)
        {
            case 1f: x.CopyTo(d); break;
            case 2f: TensorPrimitives.Multiply(x, x, d); break;
            case 3f:
                TensorPrimitives.Multiply(x, x, d);
                TensorPrimitives.Multiply(d, x, d);
                break;
            case 0.5f: TensorPrimitives.Sqrt(x, d); break;
            case -1f: TensorPrimitives.Divide(1f, x, d); break;
            default: TensorPrimitives.Pow(x, exponent, d); break;
        }
    }
}

/// <summary>d = x ∘ s for a binary operator and a fixed right-hand scalar.</summary>
internal readonly struct ScalarRightMap<TOp>(float s) : IUnaryMap where TOp : struct, IBinaryOperator
{
    public void Invoke(ReadOnlySpan<float> x, Span<float> d) => TOp.Invoke(x, s, d);
}

/// <summary>d = max(x, s).</summary>
internal readonly struct MaxScalarMap(float s) : IUnaryMap
{
    public void Invoke(ReadOnlySpan<float> x, Span<float> d) => System.Numerics.Tensors.TensorPrimitives.Max(x, s, d);
}

/// <summary>Backward of max(x, s): g where x ≥ s (ties pass the gradient to x, as PyTorch's clamp_min), else 0.</summary>
internal readonly struct ThresholdBackwardMap(float s) : IBinaryMap
{
    public void Invoke(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> d)
    {
        for (int i = 0; i < x.Length; i++) d[i] = x[i] >= s ? g[i] : 0f;
    }
}

/// <summary>Backward of |x|: g·sign(x) (0 at 0).</summary>
internal readonly struct AbsBackwardMap : IBinaryMap
{
    public void Invoke(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> d)
    {
        for (int i = 0; i < x.Length; i++) d[i] = x[i] > 0f ? g[i] : x[i] < 0f ? -g[i] : 0f;
    }
}
