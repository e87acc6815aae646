using System.Collections.Concurrent;
using Microsoft.ML.Peft.Kernels;

namespace Microsoft.ML.Peft.Tests.Kernels;

/// <summary>The packed-panel contract of <see cref="GemmBOperand"/> and a user-defined operand plugged into the GEMM.</summary>
[TestClass]
public sealed class GemmBOperandTests
{
    /// <summary>
    /// A synthetic operand, B[p, j] = (p − 2j) / 8, that writes packed panels itself, standing in for a future
    /// 4-bit format that decodes straight into the packing buffer.
    /// </summary>
    private sealed class FormulaOperand(int rows, int columns) : GemmBOperand(rows, columns)
    {
        public static float Value(int p, int j) => (p - 2 * j) / 8f;

        protected override void PackPanelsCore(int rowStart, int rowCount, int columnStart, int columnCount, int panelWidth, Span<float> destination)
        {
            for (int q = 0; q * panelWidth < columnCount; q++)
            {
                Span<float> panel = destination.Slice(q * rowCount * panelWidth, rowCount * panelWidth);
                for (int p = 0; p < rowCount; p++)
                {
                    for (int j = 0; j < panelWidth; j++)
                    {
                        int column = q * panelWidth + j;
                        panel[p * panelWidth + j] = column < columnCount ? Value(rowStart + p, columnStart + column) : 0f;
                    }
                }
            }
        }
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void Float32Operand_PackPanels_FollowsDocumentedLayout(bool transposed)
    {
        // op(B) is 5×7 with B[p, j] = 10p + j; pack rows 1..4, columns 2..7 into panels of 4 columns.
        const int k = 5, n = 7;
        int ld = (transposed ? k : n) + 2;
        var stored = new float[(transposed ? n : k) * ld];
        for (int p = 0; p < k; p++)
            for (int j = 0; j < n; j++)
                stored[transposed ? j * ld + p : p * ld + j] = 10 * p + j;

        var operand = new Float32BOperand(stored, k, n, ld, transposed);
        var packed = new float[2 * 3 * 4];
        operand.PackPanels(rowStart: 1, rowCount: 3, columnStart: 2, columnCount: 5, panelWidth: 4, packed);

        float[] expected =
        [
            12, 13, 14, 15, 22, 23, 24, 25, 32, 33, 34, 35, // panel 0: columns 2..5
            16, 0, 0, 0, 26, 0, 0, 0, 36, 0, 0, 0,          // panel 1: column 6, zero-padded
        ];
        CollectionAssert.AreEqual(expected, packed);
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void CustomOperand_DrivesGemm_MatchesDoubleReference(bool transA)
    {
        var random = new Random(31);
        foreach ((int m, int n, int k) in new[] { (5, 7, 3), (70, 300, 129), (200, 90, 300) })
        {
            int lda = transA ? m : k;
            float[] a = GemmReference.RandomMatrix(random, transA ? k : m, transA ? m : k, lda);
            float[] c0 = GemmReference.RandomMatrix(random, m, n, n), c = (float[])c0.Clone();
            Gemm.Sgemm(transA, m, 0.5f, a, lda, new FormulaOperand(k, n), 2f, c, n);
            GemmReference.AssertProduct("custom operand", transA, false, m, n, k, 0.5f, a, lda,
                (p, j) => FormulaOperand.Value(p, j), 2f, c0, c, n);
        }
    }

    /// <summary>A formula operand that declares 64-row granules and records every block it is asked for.</summary>
    private sealed class GranularOperand(int rows, int columns) : GemmBOperand(rows, columns)
    {
        private readonly FormulaOperand _values = new(rows, columns);

        public ConcurrentBag<(int Start, int Count)> Requests { get; } = [];

        public override int RowGranularity => 64;

        protected override void PackPanelsCore(int rowStart, int rowCount, int columnStart, int columnCount, int panelWidth, Span<float> destination)
        {
            Requests.Add((rowStart, rowCount));
            _values.PackPanels(rowStart, rowCount, columnStart, columnCount, panelWidth, destination);
        }
    }

    [TestMethod]
    [DataRow((int)GemmIsa.Scalar, 1)]
    [DataRow((int)GemmIsa.Avx512, 1)]
    [DataRow((int)GemmIsa.Avx512, 2)]
    public void RowGranularity_EveryRequestedBlockStartsOnAGranule(int isaValue, int threads)
    {
        // k = 1000 would otherwise be split evenly as 334 + 333 + 333.
        var isa = (GemmIsa)isaValue;
        SgemmShapeTests.RequireIsa(isa);
        const int m = 40, n = 100, k = 1000;
        var random = new Random(32);
        float[] a = GemmReference.RandomMatrix(random, m, k, k);
        float[] c0 = GemmReference.NaNMatrix(m, n), c = (float[])c0.Clone();
        var operand = new GranularOperand(k, n);
        Gemm.Sgemm(isa, threads, false, m, 1f, a, k, operand, 0f, c, n);

        Assert.IsFalse(operand.Requests.IsEmpty);
        foreach ((int start, int count) in operand.Requests)
        {
            Assert.AreEqual(0, start % 64, $"block [{start}, {start + count}) does not start on a granule");
            Assert.IsTrue(count % 64 == 0 || start + count == k, $"block [{start}, {start + count}) ends inside a granule");
        }
        GemmReference.AssertProduct("granular operand", false, false, m, n, k, 1f, a, k,
            (p, j) => FormulaOperand.Value(p, j), 0f, c0, c, n);
    }

    [TestMethod]
    public void PackPanels_BlockOutsideMatrix_Throws()
    {
        var operand = new Float32BOperand(new float[12], 3, 4, 4, transposed: false);
        var destination = new float[64];
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => operand.PackPanels(2, 2, 0, 4, 4, destination));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => operand.PackPanels(0, 3, 1, 4, 4, destination));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => operand.PackPanels(0, 3, 0, 4, 4, new float[11]));
    }

    [TestMethod]
    public void Operand_StorageTooShort_ThrowsNamingData()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => new BFloat16BOperand(new ushort[10], 3, 4, 4, transposed: true));
        StringAssert.Contains(error.Message, "'data'");
    }
}
