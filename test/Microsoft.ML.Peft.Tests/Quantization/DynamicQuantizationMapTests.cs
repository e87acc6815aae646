using Microsoft.ML.Peft.Quantization;

namespace Microsoft.ML.Peft.Tests.Quantization;

[TestClass]
public sealed class DynamicQuantizationMapTests
{
    [TestMethod]
    public void Signed_IsBitIdenticalToPyTorchCreateDynamicMap()
    {
        AssertBitIdentical(QuantFixture.Instance.Floats("dynamic.signed"), DynamicQuantizationMap.CreateSigned(), "signed");
    }

    [TestMethod]
    public void Unsigned_IsBitIdenticalToPyTorchCreateDynamicMap()
    {
        AssertBitIdentical(QuantFixture.Instance.Floats("dynamic.unsigned"), DynamicQuantizationMap.CreateUnsigned(), "unsigned");
    }

    [TestMethod]
    public void Signed_HasTheDocumentedStructure()
    {
        float[] map = DynamicQuantizationMap.CreateSigned();
        Assert.AreEqual(-0.99296875f, map[0], 0f, "most negative: -(0.9859375 + 1) / 2");
        Assert.AreEqual(0f, map[127], 0f);
        Assert.AreEqual(1f, map[255], 0f);
        for (int i = 1; i < 256; i++) Assert.IsTrue(map[i] > map[i - 1], $"strictly increasing at {i}");
        // Negatives mirror the positive fraction values exactly (entries 128..254).
        for (int i = 0; i < 127; i++) Assert.AreEqual(-map[128 + i], map[126 - i], 0f, $"mirror {i}");
        Assert.AreEqual(-1f, DynamicQuantizationMap.CreateSignedFullRange()[0], 0f);
    }

    [TestMethod]
    public void Maps_AgreeWithExactArithmetic_WithinFp32Rounding()
    {
        // Independent of PyTorch: the midpoints of linspace(0.1, 1, n) times 10^(i-6), in exact double arithmetic.
        foreach (bool signed in new[] { true, false })
        {
            var exact = new List<double> { 0.0, 1.0 };
            for (int i = 0; i < 7; i++)
            {
                int n = signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
                for (int k = 0; k + 1 < n; k++)
                {
                    double mean = (0.1 + 0.9 * k / (n - 1) + 0.1 + 0.9 * (k + 1) / (n - 1)) / 2 * Math.Pow(10, i - 6);
                    exact.Add(mean);
                    if (signed) exact.Add(-mean);
                }
            }
            exact.Sort();
            float[] map = signed ? DynamicQuantizationMap.CreateSigned() : DynamicQuantizationMap.CreateUnsigned();
            Assert.AreEqual(256, exact.Count);
            for (int i = 0; i < 256; i++)
                Assert.AreEqual(exact[i], map[i], Math.Abs(exact[i]) * 4e-7, $"{(signed ? "signed" : "unsigned")} entry {i}");
        }
    }

    [TestMethod]
    public void TorchLinspace_EndsExactly_AndIsMonotonic()
    {
        foreach (int steps in new[] { 2, 3, 9, 17, 33, 65, 129, 1000 })
        {
            float[] values = DynamicQuantizationMap.TorchLinspace(0.1f, 1f, steps);
            Assert.AreEqual(0.1f, values[0], 0f, $"steps {steps}");
            Assert.AreEqual(1f, values[^1], 0f, $"steps {steps}");
            for (int i = 1; i < steps; i++) Assert.IsTrue(values[i] > values[i - 1], $"steps {steps} index {i}");
        }
    }

    private static void AssertBitIdentical(float[] expected, float[] actual, string label)
    {
        Assert.AreEqual(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.AreEqual(BitConverter.SingleToInt32Bits(expected[i]), BitConverter.SingleToInt32Bits(actual[i]), $"{label} entry {i}: {expected[i]:R} vs {actual[i]:R}");
    }
}
