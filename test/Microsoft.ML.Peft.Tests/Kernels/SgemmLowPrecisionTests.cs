using Microsoft.ML.Peft.Kernels;

namespace Microsoft.ML.Peft.Tests.Kernels;

/// <summary>
/// B in bfloat16 and half precision: widened exactly while packing, so the result must match the double reference
/// computed from the widened values, for every kernel and layout.
/// </summary>
[TestClass]
public sealed class SgemmLowPrecisionTests
{
    /// <summary>Random bfloat16 bit patterns of values in [-1, 1) (rounded to nearest even from fp32).</summary>
    private static ushort[] RandomBf16(Random random, int count)
    {
        var bits = new ushort[count];
        for (int i = 0; i < count; i++)
        {
            int f = BitConverter.SingleToInt32Bits((float)(random.NextDouble() * 2 - 1));
            bits[i] = (ushort)((f + 0x7FFF + ((f >> 16) & 1)) >> 16);
        }
        return bits;
    }

    private static double Bf16ToDouble(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    private static Half[] RandomHalf(Random random, int count)
    {
        var values = new Half[count];
        for (int i = 0; i < count; i++) values[i] = (Half)(random.NextDouble() * 4 - 2);
        return values;
    }

    [TestMethod]
    [DataRow((int)GemmIsa.Scalar)]
    [DataRow((int)GemmIsa.Avx2)]
    [DataRow((int)GemmIsa.Avx512)]
    public void Bf16B_AllLayouts_MatchesReferenceOnWidenedValues(int isaValue)
    {
        var isa = (GemmIsa)isaValue;
        SgemmShapeTests.RequireIsa(isa);
        var random = new Random(5000 + isaValue);
        int[][] shapes = [[17, 33, 65], [31, 257, 129], [3, 70, 300], [128, 130, 200]];
        foreach (int[] shape in shapes)
        {
            foreach (bool transB in new[] { false, true })
            {
                int m = shape[0], n = shape[1], k = shape[2], ldb = (transB ? k : n) + 3, lda = k;
                float[] a = GemmReference.RandomMatrix(random, m, k, lda);
                ushort[] b = RandomBf16(random, (transB ? n : k) * ldb);
                float[] c0 = GemmReference.RandomMatrix(random, m, n, n), c = (float[])c0.Clone();
                Gemm.SgemmBf16(isa, 2, false, transB, m, n, k, 1.5f, a, lda, b, ldb, 0.5f, c, n);
                GemmReference.AssertProduct($"bf16 {isa}", false, transB, m, n, k, 1.5f, a, lda,
                    (p, j) => Bf16ToDouble(transB ? b[j * ldb + p] : b[p * ldb + j]), 0.5f, c0, c, n);
            }
        }
    }

    [TestMethod]
    [DataRow((int)GemmIsa.Scalar)]
    [DataRow((int)GemmIsa.Avx2)]
    [DataRow((int)GemmIsa.Avx512)]
    public void HalfB_AllLayouts_MatchesReferenceOnWidenedValues(int isaValue)
    {
        var isa = (GemmIsa)isaValue;
        SgemmShapeTests.RequireIsa(isa);
        var random = new Random(6000 + isaValue);
        int[][] shapes = [[17, 33, 65], [31, 257, 129], [3, 70, 300], [128, 130, 200]];
        foreach (int[] shape in shapes)
        {
            foreach (bool transB in new[] { false, true })
            {
                int m = shape[0], n = shape[1], k = shape[2], ldb = (transB ? k : n) + 1, lda = m + 2;
                float[] a = GemmReference.RandomMatrix(random, k, m, lda);
                Half[] b = RandomHalf(random, (transB ? n : k) * ldb);
                float[] c0 = GemmReference.NaNMatrix(m, n), c = (float[])c0.Clone();
                Gemm.SgemmF16(isa, 2, true, transB, m, n, k, 1f, a, lda, b, ldb, 0f, c, n);
                GemmReference.AssertProduct($"f16 {isa}", true, transB, m, n, k, 1f, a, lda,
                    (p, j) => (double)(transB ? b[j * ldb + p] : b[p * ldb + j]), 0f, c0, c, n);
            }
        }
    }

    [TestMethod]
    public void Bf16_HandComputed_WidensExactly()
    {
        // 0x3F80 = 1.0, 0x4000 = 2.0, 0xBF00 = -0.5, 0x3E80 = 0.25 as bfloat16; [1 2]·[1 2; -0.5 0.25] = [0 2.5].
        float[] a = [1, 2], c = new float[2];
        ushort[] b = [0x3F80, 0x4000, 0xBF00, 0x3E80];
        Gemm.SgemmBf16(false, false, 1, 2, 2, 1f, a, 2, b, 2, 0f, c, 2);
        CollectionAssert.AreEqual(new float[] { 0f, 2.5f }, c);
    }

    [TestMethod]
    public void PublicOperands_MatchSpanOverloads_Bitwise()
    {
        // The operand classes and the span overloads drive the same packers, so results agree to the bit.
        var random = new Random(77);
        int m = 45, n = 70, k = 90;
        float[] a = GemmReference.RandomMatrix(random, m, k, k);
        float[] b32 = GemmReference.RandomMatrix(random, n, k, k);
        ushort[] b16 = RandomBf16(random, n * k);
        Half[] bh = RandomHalf(random, k * n);

        float[] viaSpan = new float[m * n], viaOperand = new float[m * n];
        Gemm.Sgemm(false, true, m, n, k, 1f, a, k, b32, k, 0f, viaSpan, n);
        Gemm.Sgemm(false, m, 1f, a, k, new Float32BOperand(b32, k, n, k, transposed: true), 0f, viaOperand, n);
        CollectionAssert.AreEqual(viaSpan, viaOperand, "fp32");

        Gemm.SgemmBf16(false, true, m, n, k, 1f, a, k, b16, k, 0f, viaSpan, n);
        Gemm.Sgemm(false, m, 1f, a, k, new BFloat16BOperand(b16, k, n, k, transposed: true), 0f, viaOperand, n);
        CollectionAssert.AreEqual(viaSpan, viaOperand, "bf16");

        Gemm.SgemmF16(false, false, m, n, k, 1f, a, k, bh, n, 0f, viaSpan, n);
        Gemm.Sgemm(false, m, 1f, a, k, new HalfBOperand(bh, k, n, n, transposed: false), 0f, viaOperand, n);
        CollectionAssert.AreEqual(viaSpan, viaOperand, "f16");
    }
}
