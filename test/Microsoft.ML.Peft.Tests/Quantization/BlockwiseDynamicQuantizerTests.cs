using System.Text.Json;
using Microsoft.ML.Peft.Quantization;

namespace Microsoft.ML.Peft.Tests.Quantization;

[TestClass]
public sealed class BlockwiseDynamicQuantizerTests
{
    [TestMethod]
    public void MatchesPyTorchReference_SignedAndUnsigned_Blocks256And2048()
    {
        QuantFixture fixture = QuantFixture.Instance;
        int checkedCases = 0;
        foreach (JsonElement c in fixture.Manifest.GetProperty("blockwise8").EnumerateArray())
        {
            string key = c.GetProperty("key").GetString()!;
            int blockSize = c.GetProperty("blocksize").GetInt32();
            var quantizer = c.GetProperty("map").GetString() == "signed_cpu"
                ? BlockwiseDynamicQuantizer.Signed(blockSize)
                : BlockwiseDynamicQuantizer.Unsigned(blockSize);
            float[] input = fixture.Floats(c.GetProperty("input").GetString()!);

            var codes = new byte[input.Length];
            var absmax = new float[quantizer.BlockCount(input.Length)];
            quantizer.Quantize(input, codes, absmax);
            CollectionAssert.AreEqual(fixture.Bytes(c.GetProperty("codes").GetString()!), codes, key);
            CollectionAssert.AreEqual(fixture.Floats(c.GetProperty("absmax").GetString()!), absmax, key);

            var restored = new float[input.Length];
            quantizer.Dequantize(codes, absmax, restored);
            CollectionAssert.AreEqual(fixture.Floats(c.GetProperty("dequantized").GetString()!), restored, key);
            checkedCases++;
        }
        Assert.AreEqual(4, checkedCases);
    }

    [TestMethod]
    public void Encode_EqualsFirstIndexArgmin()
    {
        var random = new Random(5);
        foreach (var quantizer in new[] { BlockwiseDynamicQuantizer.Signed(), BlockwiseDynamicQuantizer.Unsigned() })
        {
            float[] map = quantizer.Map.ToArray();
            var probes = new List<float>();
            for (int i = 0; i + 1 < map.Length; i++)
            {
                float mid = (map[i] + map[i + 1]) / 2f;
                probes.AddRange([map[i], mid, MathF.BitIncrement(mid), MathF.BitDecrement(mid)]);
            }
            for (int i = 0; i < 5000; i++) probes.Add((float)(random.NextDouble() * 2 - 1) * MathF.Pow(10, -random.Next(0, 8)));
            foreach (float x in probes)
            {
                if (x < map[0]) continue;
                int best = 0;
                for (int i = 1; i < map.Length; i++)
                {
                    if (MathF.Abs(x - map[i]) < MathF.Abs(x - map[best])) best = i;
                }
                Assert.AreEqual(best, quantizer.Encode(x), $"x={x:R}");
            }
        }
    }

    [TestMethod]
    public void VectorPath_MatchesScalarPath_OnMidpointsAndRandomData()
    {
        foreach (var quantizer in new[] { BlockwiseDynamicQuantizer.Signed(256), BlockwiseDynamicQuantizer.Unsigned(2048) })
        {
            float[] map = quantizer.Map.ToArray();
            var values = new List<float>();
            for (int i = 0; i + 1 < map.Length; i++)
            {
                float mid = (map[i] + map[i + 1]) / 2f;
                values.AddRange([mid, MathF.BitIncrement(mid), MathF.BitDecrement(mid), map[i]]);
            }
            var random = new Random(17);
            for (int i = 0; i < 3000; i++) values.Add((float)random.NextDouble() * (map[0] < 0 ? 2 * random.Next(2) - 1 : 1) * MathF.Pow(10, -random.Next(0, 7)));
            values.Add(1f);
            values.Add(-1f);
            float[] data = [.. values];

            var vectorCodes = new byte[data.Length];
            var scalarCodes = new byte[data.Length];
            var vectorAbsmax = new float[quantizer.BlockCount(data.Length)];
            var scalarAbsmax = new float[vectorAbsmax.Length];
            quantizer.Quantize(data, vectorCodes, vectorAbsmax, vector: true);
            quantizer.Quantize(data, scalarCodes, scalarAbsmax, vector: false);
            CollectionAssert.AreEqual(scalarCodes, vectorCodes);
            CollectionAssert.AreEqual(scalarAbsmax, vectorAbsmax);

            var vectorValues = new float[data.Length];
            var scalarValues = new float[data.Length];
            quantizer.Dequantize(scalarCodes, scalarAbsmax, vectorValues, vector: true);
            quantizer.Dequantize(scalarCodes, scalarAbsmax, scalarValues, vector: false);
            CollectionAssert.AreEqual(scalarValues, vectorValues);
        }
    }

    [TestMethod]
    public void RoundTripError_IsAtMostHalfTheLocalGap()
    {
        var quantizer = BlockwiseDynamicQuantizer.Signed(256);
        var random = new Random(3);
        float[] data = [.. Enumerable.Range(0, 1000).Select(_ => (float)(random.NextDouble() - 0.5))];
        var codes = new byte[data.Length];
        var absmax = new float[quantizer.BlockCount(data.Length)];
        quantizer.Quantize(data, codes, absmax);
        var restored = new float[data.Length];
        quantizer.Dequantize(codes, absmax, restored);
        float[] map = quantizer.Map.ToArray();
        for (int i = 0; i < data.Length; i++)
        {
            int code = codes[i];
            float lower = code > 0 ? map[code] - map[code - 1] : 0f;
            float upper = code < 255 ? map[code + 1] - map[code] : 0f;
            float bound = MathF.Max(lower, upper) / 2 * absmax[i / 256] * 1.0001f;
            Assert.IsTrue(MathF.Abs(restored[i] - data[i]) <= bound, $"value {i}: {data[i]} -> {restored[i]}");
        }
    }

    [TestMethod]
    public void ZeroBlock_GetsTheZeroCode_AndDequantizesToZero()
    {
        var quantizer = BlockwiseDynamicQuantizer.Signed(4);
        float[] data = [0, 0, 0, 0, 0.5f, -1, 0, 0];
        var codes = new byte[8];
        var absmax = new float[2];
        quantizer.Quantize(data, codes, absmax);
        CollectionAssert.AreEqual(new byte[] { 127, 127, 127, 127 }, codes[..4]);
        Assert.AreEqual(0f, absmax[0]);
        Assert.AreEqual(1f, absmax[1]);
        Assert.AreEqual(0, codes[5], "-1 / 1 is exactly the full-range map's entry 0");
        var restored = new float[8];
        quantizer.Dequantize(codes, absmax, restored);
        Assert.AreEqual(-1f, restored[5], 0f);
        Assert.AreEqual(0f, restored[0], 0f);
    }

    [TestMethod]
    public void BadInput_IsRejectedWithTheCulpritNamed()
    {
        var quantizer = BlockwiseDynamicQuantizer.Signed(256);
        var nan = Assert.ThrowsExactly<ArgumentException>(() => quantizer.Quantize([1f, float.NaN], new byte[2], new float[1]));
        StringAssert.Contains(nan.Message, "Value 1 is NaN");
        var absmax = Assert.ThrowsExactly<ArgumentException>(() => quantizer.Quantize(new float[300], new byte[300], new float[1]));
        StringAssert.Contains(absmax.Message, "need 2");
        var codes = Assert.ThrowsExactly<ArgumentException>(() => quantizer.Dequantize(new byte[3], new float[1], new float[4]));
        StringAssert.Contains(codes.Message, "codes has 3 entries for 4 values");
        float[] unsorted = DynamicQuantizationMap.CreateUnsigned();
        (unsorted[10], unsorted[11]) = (unsorted[11], unsorted[10]);
        Assert.ThrowsExactly<ArgumentException>(() => new BlockwiseDynamicQuantizer(unsorted, 256));
    }
}
