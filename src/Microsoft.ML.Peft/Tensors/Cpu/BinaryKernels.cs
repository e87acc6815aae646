using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.Tensors;

/// <summary>A float binary operator in the four shapes a broadcast row can take (JIT-specialised: no virtual calls).</summary>
internal interface IBinaryOperator
{
    static abstract float Invoke(float x, float y);

    static abstract void Invoke(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d);

    static abstract void Invoke(ReadOnlySpan<float> x, float y, Span<float> d);

    static abstract void Invoke(float x, ReadOnlySpan<float> y, Span<float> d);
}

internal readonly struct AddOperator : IBinaryOperator
{
    public static float Invoke(float x, float y) => x + y;

    public static void Invoke(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d) => TensorPrimitives.Add(x, y, d);

    public static void Invoke(ReadOnlySpan<float> x, float y, Span<float> d) => TensorPrimitives.Add(x, y, d);

    public static void Invoke(float x, ReadOnlySpan<float> y, Span<float> d) => TensorPrimitives.Add(y, x, d);
}

internal readonly struct SubtractOperator : IBinaryOperator
{
    public static float Invoke(float x, float y) => x - y;

    public static void Invoke(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d) => TensorPrimitives.Subtract(x, y, d);

    public static void Invoke(ReadOnlySpan<float> x, float y, Span<float> d) => TensorPrimitives.Subtract(x, y, d);

    public static void Invoke(float x, ReadOnlySpan<float> y, Span<float> d) => TensorPrimitives.Subtract(x, y, d);
}

internal readonly struct MultiplyOperator : IBinaryOperator
{
    public static float Invoke(float x, float y) => x * y;

    public static void Invoke(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d) => TensorPrimitives.Multiply(x, y, d);

    public static void Invoke(ReadOnlySpan<float> x, float y, Span<float> d) => TensorPrimitives.Multiply(x, y, d);

    public static void Invoke(float x, ReadOnlySpan<float> y, Span<float> d) => TensorPrimitives.Multiply(y, x, d);
}

internal readonly struct DivideOperator : IBinaryOperator
{
    public static float Invoke(float x, float y) => x / y;

    public static void Invoke(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d) => TensorPrimitives.Divide(x, y, d);

    public static void Invoke(ReadOnlySpan<float> x, float y, Span<float> d) => TensorPrimitives.Divide(x, y, d);

    public static void Invoke(float x, ReadOnlySpan<float> y, Span<float> d) => TensorPrimitives.Divide(x, y, d);
}

/// <summary>
/// Runs a binary operator over broadcast operands into a contiguous output. The loop plan turns each layout into rows
/// whose inner strides are 1 (vector call), 0 (vector-scalar call) or anything else (scalar loop), so bias adds, row
/// scaling and same-shape ops all hit TensorPrimitives. Large work is split across cores by rows, or by columns when
/// the whole op is a single long row.
/// </summary>
internal static unsafe class BinaryKernels
{
    public static void Apply<TOp>(Tensor a, Tensor b, Tensor output, string op) where TOp : struct, IBinaryOperator
    {
        var loop = StridedLoop.Create(output.Shape, a, b, op);
        nint pa = (nint)a.Ptr, pb = (nint)b.Ptr, po = (nint)output.Ptr;
        long total = (long)loop.RowCount * loop.RowLength;
        if (total < ParallelHelper.MinParallelElements)
        {
            Rows<TOp>(loop, pa, pb, po, 0, loop.RowCount, 0, loop.RowLength);
        }
        else if (loop.RowCount >= ParallelHelper.Workers)
        {
            ParallelHelper.For(loop.RowCount, loop.RowLength, (r0, r1) => Rows<TOp>(loop, pa, pb, po, r0, r1, 0, loop.RowLength));
        }
        else
        {
            ParallelHelper.For(loop.RowLength, loop.RowCount, (c0, c1) => Rows<TOp>(loop, pa, pb, po, 0, loop.RowCount, c0, c1));
        }
    }

    private static void Rows<TOp>(in StridedLoop loop, nint aBase, nint bBase, nint oBase, int r0, int r1, int c0, int c1)
        where TOp : struct, IBinaryOperator
    {
        int sa = loop.RowStrideA, sb = loop.RowStrideB, n = c1 - c0;
        for (int row = r0; row < r1; row++)
        {
            loop.Offsets(row, out int oo, out int ao, out int bo);
            float* pa = (float*)aBase + ao + (long)c0 * sa;
            float* pb = (float*)bBase + bo + (long)c0 * sb;
            var d = new Span<float>((float*)oBase + oo + c0, n);
            if (sa == 1 && sb == 1) TOp.Invoke(new ReadOnlySpan<float>(pa, n), new ReadOnlySpan<float>(pb, n), d);
            else if (sa == 1 && sb == 0) TOp.Invoke(new ReadOnlySpan<float>(pa, n), *pb, d);
            else if (sa == 0 && sb == 1) TOp.Invoke(*pa, new ReadOnlySpan<float>(pb, n), d);
            else
            {
                for (int i = 0; i < n; i++) d[i] = TOp.Invoke(pa[(long)i * sa], pb[(long)i * sb]);
            }
        }
    }
}
