using MathNet.Numerics.Distributions;
using Microsoft.ML.Peft.Quantization;

namespace Microsoft.ML.Peft.Tests.Quantization;

[TestClass]
public sealed class FourBitCodebookTests
{
    // ../shared/docs/peft-reference.md §2.1, bitsandbytes get_4bit_type("nf4").
    private static readonly double[] Nf4FromDoc =
    [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ];

    [TestMethod]
    public void Nf4_IsTheDocumentedTable_AndThePyTorchFixture()
    {
        float[] fixture = QuantFixture.Instance.Floats("code.nf4");
        for (int i = 0; i < 16; i++)
        {
            Assert.AreEqual(Nf4FromDoc[i], FourBitCodebook.NF4.Values[i], 0.0, $"code {i}");
            Assert.AreEqual(fixture[i], FourBitCodebook.NF4.Values[i], 0f, $"code {i}");
        }
    }

    [TestMethod]
    public void Nf4_IsRederivedFromNormalQuantiles_Within5e8()
    {
        // create_normal_map(offset=0.9677083, use_extra_value=True): 8 positive quantiles at linspace(offset, 0.5, 9)[:-1],
        // 7 negative ones at linspace(offset, 0.5, 8)[:-1], a zero; normalised by the largest. Probabilities in fp32 as
        // torch.linspace gives them; quantiles from MathNet's inverse normal CDF (independent of PyTorch).
        float[] p9 = DynamicQuantizationMap.TorchLinspace(0.9677083f, 0.5f, 9);
        float[] p8 = DynamicQuantizationMap.TorchLinspace(0.9677083f, 0.5f, 8);
        var levels = new List<double> { 0.0 };
        for (int i = 0; i < 8; i++) levels.Add(Normal.InvCDF(0, 1, p9[i]));
        for (int i = 0; i < 7; i++) levels.Add(-Normal.InvCDF(0, 1, p8[i]));
        levels.Sort();
        double max = levels[^1];
        // bitsandbytes normalised in fp32, so its literals carry fp32 rounding (≤ 3e-8); agreement to 7 decimals.
        for (int i = 0; i < 16; i++)
            Assert.AreEqual(levels[i] / max, FourBitCodebook.NF4.Values[i], 5e-8, $"code {i}");

        float[] constructedByPyTorch = QuantFixture.Instance.Floats("code.nf4_constructed");
        for (int i = 0; i < 16; i++) Assert.AreEqual(constructedByPyTorch[i], FourBitCodebook.NF4.Values[i], 5e-8f, $"code {i}");
    }

    [TestMethod]
    public void Fp4_IsE2M1InBitPatternOrder_DividedBy12()
    {
        double[] bitPatternValues = [0, 0.0625, 8, 12, 4, 6, 2, 3]; // doc §2.1
        float[] fixture = QuantFixture.Instance.Floats("code.fp4");
        for (int code = 0; code < 16; code++)
        {
            double magnitude = bitPatternValues[code & 7] / 12.0;
            double expected = code >= 8 ? -magnitude : magnitude;
            Assert.AreEqual((float)expected, FourBitCodebook.FP4.Values[code], 0f, $"code {code}");
            Assert.AreEqual(fixture[code], FourBitCodebook.FP4.Values[code], 0f, $"code {code}");
        }
        Assert.IsTrue(float.IsNegative(FourBitCodebook.FP4.Values[8]), "code 8 is -0");
    }

    [TestMethod]
    public void Int4_IsSevenths_InBitsAndBytesOrder()
    {
        float[] fixture = QuantFixture.Instance.Floats("code.int4");
        int[] numerators = [7, 6, 5, 4, 3, 2, 1, 0, 0, -1, -2, -3, -4, -5, -6, -7];
        for (int code = 0; code < 16; code++)
        {
            Assert.AreEqual((float)(numerators[code] / 7.0), FourBitCodebook.Int4.Values[code], 0f, $"code {code}");
            Assert.AreEqual(fixture[code], FourBitCodebook.Int4.Values[code], 0f, $"code {code}");
        }
    }

    [TestMethod]
    public void ZeroCodes_AreTheFirstIndexOfZero()
    {
        Assert.AreEqual(7, FourBitCodebook.NF4.ZeroCode);
        Assert.AreEqual(0, FourBitCodebook.FP4.ZeroCode);
        Assert.AreEqual(7, FourBitCodebook.Int4.ZeroCode);
    }

    [TestMethod]
    public void Encode_EqualsFirstIndexArgmin_OnMidpointsNeighboursAndRandomValues()
    {
        var random = new Random(11);
        foreach (FourBitType type in Enum.GetValues<FourBitType>())
        {
            FourBitCodebook book = FourBitCodebook.For(type);
            var probes = new List<float> { -1f, 1f, 0f, -0f, 1e-9f, -1e-9f, -0.001f, 0.003f };
            float[] levels = [.. book.Values.ToArray().Distinct().Order()];
            for (int i = 0; i + 1 < levels.Length; i++)
            {
                float mid = (levels[i] + levels[i + 1]) / 2f;
                probes.AddRange([mid, MathF.BitIncrement(mid), MathF.BitDecrement(mid), levels[i], MathF.BitIncrement(levels[i])]);
            }
            for (int i = 0; i < 20000; i++) probes.Add((float)(random.NextDouble() * 2 - 1));

            foreach (float x in probes)
                Assert.AreEqual(BruteForceArgmin(book.Values, x), book.Encode(x), $"{type} x={x:R}");
        }
    }

    [TestMethod]
    public void Encode_NegativeValuesNearZero_TakeThePositiveZeroCode()
    {
        // |x - 0| and |x - (-0)| tie exactly; argmin keeps the first index.
        Assert.AreEqual(0, FourBitCodebook.FP4.Encode(-0.001f));
        Assert.AreEqual(7, FourBitCodebook.Int4.Encode(-0.01f));
        Assert.AreEqual(9, FourBitCodebook.FP4.Encode(-0.004f)); // nearer -0.0052 (code 9) than 0
    }

    private static byte BruteForceArgmin(ReadOnlySpan<float> table, float x)
    {
        int best = 0;
        for (int i = 1; i < table.Length; i++)
        {
            if (MathF.Abs(x - table[i]) < MathF.Abs(x - table[best])) best = i;
        }
        return (byte)best;
    }
}
