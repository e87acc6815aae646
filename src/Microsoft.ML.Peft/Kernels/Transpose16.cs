using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// In-register 16×16 float transpose with AVX-512, the building block of the packing routines that must turn rows into
/// columns (A not transposed, B transposed).
/// </summary>
/// <remarks>
/// Why it is fast: 16 row loads, 64 shuffles and 16 stores move 256 elements, against 256 scalar loads and stores for an
/// element-by-element gather. The shuffles work in four stages: interleave pairs of rows (unpack), gather 4-row column
/// quads inside each 128-bit lane (shufps), then regroup the 128-bit lanes twice (shuff32x4).
/// </remarks>
internal static unsafe class Transpose16
{
    /// <summary>
    /// Reads <paramref name="rows"/> (≤ 16) rows of 16 floats, <c>src + r·srcStride</c>, treating missing rows as zero, and
    /// writes the 16 columns as 16-float vectors to <c>dst + j·dstStride</c> for j = 0..15, in increasing j.
    /// </summary>
    /// <remarks>
    /// When <paramref name="dstStride"/> is below 16 the stores overlap and each later one overwrites the tail of the one
    /// before: the caller gets column j's first dstStride values at <c>dst + j·dstStride</c> and must provide 16 −
    /// dstStride writable floats past the last one.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Block(float* src, nint srcStride, int rows, float* dst, nint dstStride)
    {
        Vector512<float> r0 = Row(src, srcStride, rows, 0), r1 = Row(src, srcStride, rows, 1);
        Vector512<float> r2 = Row(src, srcStride, rows, 2), r3 = Row(src, srcStride, rows, 3);
        Vector512<float> r4 = Row(src, srcStride, rows, 4), r5 = Row(src, srcStride, rows, 5);
        Vector512<float> r6 = Row(src, srcStride, rows, 6), r7 = Row(src, srcStride, rows, 7);
        Vector512<float> r8 = Row(src, srcStride, rows, 8), r9 = Row(src, srcStride, rows, 9);
        Vector512<float> r10 = Row(src, srcStride, rows, 10), r11 = Row(src, srcStride, rows, 11);
        Vector512<float> r12 = Row(src, srcStride, rows, 12), r13 = Row(src, srcStride, rows, 13);
        Vector512<float> r14 = Row(src, srcStride, rows, 14), r15 = Row(src, srcStride, rows, 15);

        // Stage 1: lane l of t(2i) = [r(2i)[4l], r(2i+1)[4l], r(2i)[4l+1], r(2i+1)[4l+1]]; t(2i+1) likewise for 4l+2, 4l+3.
        Vector512<float> t0 = Avx512F.UnpackLow(r0, r1), t1 = Avx512F.UnpackHigh(r0, r1);
        Vector512<float> t2 = Avx512F.UnpackLow(r2, r3), t3 = Avx512F.UnpackHigh(r2, r3);
        Vector512<float> t4 = Avx512F.UnpackLow(r4, r5), t5 = Avx512F.UnpackHigh(r4, r5);
        Vector512<float> t6 = Avx512F.UnpackLow(r6, r7), t7 = Avx512F.UnpackHigh(r6, r7);
        Vector512<float> t8 = Avx512F.UnpackLow(r8, r9), t9 = Avx512F.UnpackHigh(r8, r9);
        Vector512<float> t10 = Avx512F.UnpackLow(r10, r11), t11 = Avx512F.UnpackHigh(r10, r11);
        Vector512<float> t12 = Avx512F.UnpackLow(r12, r13), t13 = Avx512F.UnpackHigh(r12, r13);
        Vector512<float> t14 = Avx512F.UnpackLow(r14, r15), t15 = Avx512F.UnpackHigh(r14, r15);

        // Stage 2: lane l of r(4q+j) = column 4l+j of rows 4q..4q+3.
        r0 = Avx512F.Shuffle(t0, t2, 0x44); r1 = Avx512F.Shuffle(t0, t2, 0xEE);
        r2 = Avx512F.Shuffle(t1, t3, 0x44); r3 = Avx512F.Shuffle(t1, t3, 0xEE);
        r4 = Avx512F.Shuffle(t4, t6, 0x44); r5 = Avx512F.Shuffle(t4, t6, 0xEE);
        r6 = Avx512F.Shuffle(t5, t7, 0x44); r7 = Avx512F.Shuffle(t5, t7, 0xEE);
        r8 = Avx512F.Shuffle(t8, t10, 0x44); r9 = Avx512F.Shuffle(t8, t10, 0xEE);
        r10 = Avx512F.Shuffle(t9, t11, 0x44); r11 = Avx512F.Shuffle(t9, t11, 0xEE);
        r12 = Avx512F.Shuffle(t12, t14, 0x44); r13 = Avx512F.Shuffle(t12, t14, 0xEE);
        r14 = Avx512F.Shuffle(t13, t15, 0x44); r15 = Avx512F.Shuffle(t13, t15, 0xEE);

        // Stage 3: pair lanes {0,2} / {1,3} of the row quads 0-3 with 4-7, and 8-11 with 12-15.
        t0 = Avx512F.Shuffle4x128(r0, r4, 0x88); t1 = Avx512F.Shuffle4x128(r1, r5, 0x88);
        t2 = Avx512F.Shuffle4x128(r2, r6, 0x88); t3 = Avx512F.Shuffle4x128(r3, r7, 0x88);
        t4 = Avx512F.Shuffle4x128(r0, r4, 0xDD); t5 = Avx512F.Shuffle4x128(r1, r5, 0xDD);
        t6 = Avx512F.Shuffle4x128(r2, r6, 0xDD); t7 = Avx512F.Shuffle4x128(r3, r7, 0xDD);
        t8 = Avx512F.Shuffle4x128(r8, r12, 0x88); t9 = Avx512F.Shuffle4x128(r9, r13, 0x88);
        t10 = Avx512F.Shuffle4x128(r10, r14, 0x88); t11 = Avx512F.Shuffle4x128(r11, r15, 0x88);
        t12 = Avx512F.Shuffle4x128(r8, r12, 0xDD); t13 = Avx512F.Shuffle4x128(r9, r13, 0xDD);
        t14 = Avx512F.Shuffle4x128(r10, r14, 0xDD); t15 = Avx512F.Shuffle4x128(r11, r15, 0xDD);

        // Stage 4: the full columns; column j is written to dst + j·dstStride in increasing j.
        Avx512F.Store(dst, Avx512F.Shuffle4x128(t0, t8, 0x88));
        Avx512F.Store(dst + dstStride, Avx512F.Shuffle4x128(t1, t9, 0x88));
        Avx512F.Store(dst + 2 * dstStride, Avx512F.Shuffle4x128(t2, t10, 0x88));
        Avx512F.Store(dst + 3 * dstStride, Avx512F.Shuffle4x128(t3, t11, 0x88));
        Avx512F.Store(dst + 4 * dstStride, Avx512F.Shuffle4x128(t4, t12, 0x88));
        Avx512F.Store(dst + 5 * dstStride, Avx512F.Shuffle4x128(t5, t13, 0x88));
        Avx512F.Store(dst + 6 * dstStride, Avx512F.Shuffle4x128(t6, t14, 0x88));
        Avx512F.Store(dst + 7 * dstStride, Avx512F.Shuffle4x128(t7, t15, 0x88));
        Avx512F.Store(dst + 8 * dstStride, Avx512F.Shuffle4x128(t0, t8, 0xDD));
        Avx512F.Store(dst + 9 * dstStride, Avx512F.Shuffle4x128(t1, t9, 0xDD));
        Avx512F.Store(dst + 10 * dstStride, Avx512F.Shuffle4x128(t2, t10, 0xDD));
        Avx512F.Store(dst + 11 * dstStride, Avx512F.Shuffle4x128(t3, t11, 0xDD));
        Avx512F.Store(dst + 12 * dstStride, Avx512F.Shuffle4x128(t4, t12, 0xDD));
        Avx512F.Store(dst + 13 * dstStride, Avx512F.Shuffle4x128(t5, t13, 0xDD));
        Avx512F.Store(dst + 14 * dstStride, Avx512F.Shuffle4x128(t6, t14, 0xDD));
        Avx512F.Store(dst + 15 * dstStride, Avx512F.Shuffle4x128(t7, t15, 0xDD));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Row(float* src, nint stride, int rows, int r) =>
        r < rows ? Avx512F.LoadVector512(src + r * stride) : Vector512<float>.Zero;
}
