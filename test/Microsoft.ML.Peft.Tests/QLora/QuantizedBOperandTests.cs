using Microsoft.ML.Peft.Kernels;
using Microsoft.ML.Peft.Quantization;

namespace Microsoft.ML.Peft.Tests.QLora;

/// <summary>
/// The fused 4-bit GEMM operand against the unfused path: dequantize the whole weight, then run the same packed SGEMM
/// over a <see cref="Float32BOperand"/>. Both pack the same fp32 values into the same panels and run the same
/// micro-kernel with the same blocking, so results must be bit-identical; a double-precision product bounds both.
/// </summary>
[TestClass]
public sealed class QuantizedBOperandTests
{
    private static readonly (int M, int Out, int In)[] Shapes = [(1, 7, 5), (3, 33, 65), (9, 70, 129), (17, 129, 96), (40, 100, 300), (64, 257, 520)];

    [TestMethod]
    [DataRow(FourBitType.NF4, true, 64)]
    [DataRow(FourBitType.NF4, false, 64)]
    [DataRow(FourBitType.FP4, true, 32)]
    [DataRow(FourBitType.FP4, false, 128)]
    [DataRow(FourBitType.Int4, true, 64)]
    [DataRow(FourBitType.Int4, false, 256)]
    public void Forward_IsBitIdenticalToDequantizeThenSgemm(FourBitType type, bool doubleQuant, int blockSize)
    {
        foreach (var (m, outF, inF) in Shapes)
        {
            var w = Quantize(outF, inF, type, blockSize, doubleQuant, seed: (ulong)(outF * 31 + inF));
            float[] dense = w.Dequantize();
            float[] x = Random(m * inF, seed: 5);
            var fused = new float[m * outF];
            var reference = new float[m * outF];
            Gemm.Sgemm(false, m, 1f, x, inF, new QuantizedBOperand(w, transposed: true), 0f, fused, outF);
            Gemm.Sgemm(false, m, 1f, x, inF, new Float32BOperand(dense, inF, outF, inF, transposed: true), 0f, reference, outF);
            CollectionAssert.AreEqual(reference, fused, $"y = x·Wᵀ, m={m} out={outF} in={inF}");
            AssertCloseToDouble(x, dense, m, outF, inF, transposedWeight: true, fused);
        }
    }

    [TestMethod]
    [DataRow(FourBitType.NF4, true)]
    [DataRow(FourBitType.FP4, false)]
    [DataRow(FourBitType.Int4, true)]
    public void InputGradient_IsBitIdenticalToDequantizeThenSgemm(FourBitType type, bool doubleQuant)
    {
        foreach (var (m, outF, inF) in Shapes)
        {
            var w = Quantize(outF, inF, type, 64, doubleQuant, seed: (ulong)(outF + inF));
            float[] dense = w.Dequantize();
            float[] dy = Random(m * outF, seed: 9);
            var fused = new float[m * inF];
            var reference = new float[m * inF];
            Gemm.Sgemm(false, m, 1f, dy, outF, new QuantizedBOperand(w, transposed: false), 0f, fused, inF);
            Gemm.Sgemm(false, m, 1f, dy, outF, new Float32BOperand(dense, outF, inF, inF, transposed: false), 0f, reference, inF);
            CollectionAssert.AreEqual(reference, fused, $"dX = dY·W, m={m} out={outF} in={inF}");
            AssertCloseToDouble(dy, dense, m, inF, outF, transposedWeight: false, fused);
        }
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void PackPanels_MatchesFloat32OperandOnOddBlocks(bool transposed)
    {
        const int outF = 45, inF = 77;
        var w = Quantize(outF, inF, FourBitType.NF4, 32, true, seed: 3);
        float[] dense = w.Dequantize();
        var fused = new QuantizedBOperand(w, transposed);
        var reference = transposed
            ? new Float32BOperand(dense, inF, outF, inF, transposed: true)
            : new Float32BOperand(dense, outF, inF, inF, transposed: false);
        Assert.AreEqual(reference.Rows, fused.Rows);
        Assert.AreEqual(reference.Columns, fused.Columns);
        foreach (var (r0, rc, c0, cc, nr) in new[] { (0, fused.Rows, 0, fused.Columns, 16), (3, 11, 5, 19, 8), (1, 7, 1, 33, 32), (fused.Rows - 1, 1, fused.Columns - 3, 3, 4) })
        {
            int size = (cc + nr - 1) / nr * rc * nr;
            // Packers store whole aligned vectors, as into the GEMM's own 64-byte aligned buffers.
            var a = Aligned(size);
            var b = Aligned(size);
            a.Fill(float.NaN);
            fused.PackPanels(r0, rc, c0, cc, nr, a);
            reference.PackPanels(r0, rc, c0, cc, nr, b);
            CollectionAssert.AreEqual(b.ToArray(), a.ToArray(), $"block rows {r0}+{rc}, columns {c0}+{cc}, panel {nr}");
        }
    }

    [TestMethod]
    public void Constructor_RejectsNon2DWeight()
    {
        var w = QuantizedTensor4Bit.Quantize(Random(24, 1), [2, 3, 4]);
        var e = Assert.ThrowsExactly<ArgumentException>(() => new QuantizedBOperand(w, true));
        StringAssert.Contains(e.Message, "[2, 3, 4]");
    }

    private static unsafe Span<float> Aligned(int count)
    {
        var array = GC.AllocateArray<float>(count + 16, pinned: true);
        fixed (float* p = array)
        {
            int skip = (int)((64 - (nint)p % 64) % 64 / sizeof(float));
            return array.AsSpan(skip, count);
        }
    }

    internal static QuantizedTensor4Bit Quantize(int outF, int inF, FourBitType type, int blockSize, bool doubleQuant, ulong seed) =>
        QuantizedTensor4Bit.Quantize(Random(outF * inF, seed), [outF, inF], type, blockSize, doubleQuant);

    internal static float[] Random(int count, ulong seed)
    {
        var values = new float[count];
        new Microsoft.ML.Peft.Tensors.Generator(seed).FillNormal(values);
        return values;
    }

    /// <summary>|fused − exact| ≤ 1e-5·Σ|a·b| per element (fp32 accumulation error bound with slack), exact in double.</summary>
    private static void AssertCloseToDouble(float[] a, float[] w, int m, int n, int k, bool transposedWeight, float[] actual)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0, magnitude = 0;
                for (int p = 0; p < k; p++)
                {
                    double b = transposedWeight ? w[j * k + p] : w[p * n + j];
                    sum += a[i * k + p] * b;
                    magnitude += Math.Abs(a[i * k + p] * b);
                }
                Assert.AreEqual(sum, actual[i * n + j], 1e-5 * magnitude + 1e-30, $"element ({i}, {j})");
            }
        }
    }
}
