namespace Microsoft.ML.Peft.Tensors;

/// <summary>An elementwise function of one contiguous span (struct: JIT-specialised, may carry parameters).</summary>
internal interface IUnaryMap
{
    void Invoke(ReadOnlySpan<float> x, Span<float> destination);
}

/// <summary>An elementwise function of two same-shape contiguous spans (fused backward formulas).</summary>
internal interface IBinaryMap
{
    void Invoke(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination);
}

/// <summary>Applies span functions to contiguous tensors, split into per-core chunks when large.</summary>
internal static unsafe class MapKernels
{
    /// <summary>destination[i] = f(x[i]); both contiguous with equal counts.</summary>
    public static void Map<TMap>(Tensor x, Tensor destination, TMap f) where TMap : struct, IUnaryMap
    {
        nint px = (nint)x.Ptr, pd = (nint)destination.Ptr;
        int n = x.Count;
        if (n < ParallelHelper.MinParallelElements)
        {
            f.Invoke(new ReadOnlySpan<float>((float*)px, n), new Span<float>((float*)pd, n));
            return;
        }
        ParallelHelper.For(n, 1, (s, e) =>
            f.Invoke(new ReadOnlySpan<float>((float*)px + s, e - s), new Span<float>((float*)pd + s, e - s)));
    }

    /// <summary>destination[i] = f(x[i], y[i]); all contiguous with equal counts.</summary>
    public static void Map<TMap>(Tensor x, Tensor y, Tensor destination, TMap f) where TMap : struct, IBinaryMap
    {
        nint px = (nint)x.Ptr, py = (nint)y.Ptr, pd = (nint)destination.Ptr;
        int n = x.Count;
        if (n < ParallelHelper.MinParallelElements)
        {
            f.Invoke(new ReadOnlySpan<float>((float*)px, n), new ReadOnlySpan<float>((float*)py, n), new Span<float>((float*)pd, n));
            return;
        }
        ParallelHelper.For(n, 1, (s, e) => f.Invoke(
            new ReadOnlySpan<float>((float*)px + s, e - s), new ReadOnlySpan<float>((float*)py + s, e - s), new Span<float>((float*)pd + s, e - s)));
    }
}
