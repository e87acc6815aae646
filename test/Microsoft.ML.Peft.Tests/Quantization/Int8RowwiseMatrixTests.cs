using System.Text.Json;
using Microsoft.ML.Peft.Quantization;

namespace Microsoft.ML.Peft.Tests.Quantization;

[TestClass]
public sealed class Int8RowwiseMatrixTests
{
    [TestMethod]
    public void MatchesPyTorchReference_CodesStatsAndDequantizedValues()
    {
        QuantFixture fixture = QuantFixture.Instance;
        JsonElement c = fixture.Manifest.GetProperty("int8_rowwise");
        string input = c.GetProperty("input").GetString()!;
        int[] shape = fixture.Shape(input);
        var matrix = Int8RowwiseMatrix.Quantize(fixture.Floats(input), shape[0], shape[1]);
        CollectionAssert.AreEqual(fixture.SBytes(c.GetProperty("codes").GetString()!), matrix.Codes.ToArray());
        CollectionAssert.AreEqual(fixture.Floats(c.GetProperty("stats").GetString()!), matrix.RowAbsmax.ToArray());
        CollectionAssert.AreEqual(fixture.Floats(c.GetProperty("dequantized").GetString()!), matrix.Dequantize());
    }

    [TestMethod]
    public void HandComputed_RoundHalfToEven_AndZeroRow()
    {
        // Row 0: absmax 2, factor 63.5: 1 -> 63.5 -> 64 (even), 0.5 -> 31.75 -> 32, -2 -> -127. Row 1 all zero.
        var matrix = Int8RowwiseMatrix.Quantize([1f, 0.5f, -2f, 0f, 0f, 0f], 2, 3);
        CollectionAssert.AreEqual(new sbyte[] { 64, 32, -127, 0, 0, 0 }, matrix.Codes.ToArray());
        CollectionAssert.AreEqual(new[] { 2f, 0f }, matrix.RowAbsmax.ToArray());
        float[] restored = matrix.Dequantize();
        Assert.AreEqual(64f * 2f * (float)7.874015718698502e-3, restored[0], 0f);
        Assert.AreEqual(-2f, restored[2], 1e-6f);
        Assert.AreEqual(0f, restored[4], 0f);
        Assert.AreEqual(6 + 8, matrix.StorageBytes);
    }

    [TestMethod]
    public void RoundTripError_IsAtMostHalfAStep()
    {
        float[] data = QuantizedTensor4BitTests.Gaussian(16 * 50, seed: 8);
        var matrix = Int8RowwiseMatrix.Quantize(data, 16, 50);
        float[] restored = matrix.Dequantize();
        for (int i = 0; i < data.Length; i++)
            Assert.AreEqual(data[i], restored[i], matrix.RowAbsmax[i / 50] / 127f * 0.5001f, $"value {i}");
    }

    [TestMethod]
    public void BadInput_IsRejected()
    {
        var shape = Assert.ThrowsExactly<ArgumentException>(() => Int8RowwiseMatrix.Quantize(new float[5], 2, 3));
        StringAssert.Contains(shape.Message, "A 2×3 matrix has 6 values, got 5");
        var nan = Assert.ThrowsExactly<ArgumentException>(() => Int8RowwiseMatrix.Quantize([0f, 1f, 2f, float.NaN], 2, 2));
        StringAssert.Contains(nan.Message, "matrix[1, 1]");
    }
}
