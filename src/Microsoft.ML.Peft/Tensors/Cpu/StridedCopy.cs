namespace Microsoft.ML.Peft.Tensors;

/// <summary>Copies a strided view into contiguous memory (the kernel behind Contiguous, ToArray and dtype casts).</summary>
internal static unsafe class StridedCopy
{
    /// <summary>Copies every element of <paramref name="source"/>, row-major, into <paramref name="destination"/>.
    /// Rows that are contiguous in the source are block copies; other rows are gathered element by element.</summary>
    public static void Copy<T>(Tensor source, Span<T> destination) where T : unmanaged
    {
        if (destination.Length < source.Count) throw new ArgumentException("destination too small");
        T* src = source.PtrAs<T>();
        if (source.IsContiguous)
        {
            new ReadOnlySpan<T>(src, source.Count).CopyTo(destination);
            return;
        }
        var loop = StridedLoop.Create(source.Shape, source, null, "contiguous");
        fixed (T* dstBase = destination)
        {
            T* dst = dstBase;
            int n = loop.RowLength;
            if (loop.RowCount * (long)n >= ParallelHelper.MinParallelElements && loop.RowCount > 1)
            {
                nint s = (nint)src, d = (nint)dst;
                var plan = loop;
                ParallelHelper.For(loop.RowCount, n, (start, end) => CopyRows((T*)s, (T*)d, plan, start, end));
            }
            else
            {
                CopyRows(src, dst, loop, 0, loop.RowCount);
            }
        }
    }

    private static void CopyRows<T>(T* src, T* dst, in StridedLoop loop, int rowStart, int rowEnd) where T : unmanaged
    {
        int n = loop.RowLength, stride = loop.RowStrideA;
        for (int row = rowStart; row < rowEnd; row++)
        {
            loop.Offsets(row, out int o, out int a, out _);
            T* s = src + a;
            T* d = dst + o;
            if (stride == 1)
            {
                new ReadOnlySpan<T>(s, n).CopyTo(new Span<T>(d, n));
            }
            else if (stride == 0)
            {
                new Span<T>(d, n).Fill(*s);
            }
            else
            {
                for (int i = 0; i < n; i++) d[i] = s[(long)i * stride];
            }
        }
    }
}

/// <summary>Copies between two arbitrary strided views of equal shape (4-byte elements).</summary>
internal static unsafe class StridedAssign
{
    /// <summary>destination[i] = source[i] for every index; <paramref name="source"/> may broadcast.</summary>
    public static void Copy(Tensor source, Tensor destination)
    {
        var loop = StridedLoop.Create(destination.Shape, destination, source, "copy");
        float* dst = destination.Ptr, src = source.Ptr;
        int n = loop.RowLength, sd = loop.RowStrideA, ss = loop.RowStrideB;
        for (int row = 0; row < loop.RowCount; row++)
        {
            loop.Offsets(row, out _, out int d, out int s);
            float* pd = dst + d, ps = src + s;
            if (sd == 1 && ss == 1) new ReadOnlySpan<float>(ps, n).CopyTo(new Span<float>(pd, n));
            else if (sd == 1 && ss == 0) new Span<float>(pd, n).Fill(*ps);
            else
            {
                for (int i = 0; i < n; i++) pd[(long)i * sd] = ps[(long)i * ss];
            }
        }
    }
}
