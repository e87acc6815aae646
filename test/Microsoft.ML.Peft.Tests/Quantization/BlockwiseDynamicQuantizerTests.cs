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
            // Zeros of both signs, subnormals, and values either side of bucket edges (keys ending in 0000 / FFFF).
            values.AddRange([0f, -0f, float.Epsilon, -float.Epsilon, 1e-40f, -1e-40f, 1e-30f, -1e-30f]);
            for (int i = 0; i < 400; i++)
            {
                float edge = BitConverter.Int32BitsToSingle((random.Next(0x3000, 0x3F80) << 16) | (i % 2 == 0 ? 0 : 0xFFFF));
                values.AddRange([edge, map[0] < 0 ? -edge : edge]);
            }
            float[] data = [.. values];

            var scalarCodes = new byte[data.Length];
            var scalarAbsmax = new float[quantizer.BlockCount(data.Length)];
            quantizer.Quantize(data, scalarCodes, scalarAbsmax, vector: false);
            foreach (var path in new[] { BlockwiseDynamicQuantizer.EncodePath.BinarySearchAvx2, BlockwiseDynamicQuantizer.EncodePath.BucketsAvx2 })
            {
                var vectorCodes = new byte[data.Length];
                var vectorAbsmax = new float[scalarAbsmax.Length];
                quantizer.Quantize(data, vectorCodes, vectorAbsmax, path);
                CollectionAssert.AreEqual(scalarCodes, vectorCodes, path.ToString());
                CollectionAssert.AreEqual(scalarAbsmax, vectorAbsmax, path.ToString());
            }

            var vectorValues = new float[data.Length];
            var scalarValues = new float[data.Length];
            quantizer.Dequantize(scalarCodes, scalarAbsmax, vectorValues, vector: true);
            quantizer.Dequantize(scalarCodes, scalarAbsmax, scalarValues, vector: false);
            CollectionAssert.AreEqual(scalarValues, vectorValues);
        }
    }

    [TestMethod]
    public void Buckets_GiveTheBinarySearchAnswer_ForEveryBucketEdge_AndNeedOneStepForBitsandbytesMaps()
    {
        foreach (var quantizer in new[] { BlockwiseDynamicQuantizer.Signed(), BlockwiseDynamicQuantizer.Unsigned() })
        {
            float[] map = quantizer.Map.ToArray();
            var buckets = DynamicCodeBuckets.For(map);
            Assert.AreEqual(1, buckets.MaxSteps, "codes at least a bucket apart");
            Assert.AreEqual(BlockwiseDynamicQuantizer.EncodePath.BucketsAvx2 == quantizer.BestEncodePath, System.Runtime.Intrinsics.X86.Avx2.IsSupported);
            // Every finite value in [-1, 1] by its bucket's smallest and largest float: lookup + one step = largest
            // index with map[i] ≤ x (0 when none), counted directly.
            for (uint bucket = 0x4000; bucket < 0xC000; bucket += 7)
            {
                foreach (uint key in new[] { bucket << DynamicCodeBuckets.Shift, (bucket << DynamicCodeBuckets.Shift) | 0xFFFF })
                {
                    float x = BitConverter.Int32BitsToSingle((int)((key & 0x8000_0000u) != 0 ? key & 0x7FFF_FFFFu : ~key));
                    if (float.IsNaN(x) || Math.Abs(x) > 1) continue;
                    Assert.AreEqual(key, DynamicCodeBuckets.Key(x));
                    int expected = Math.Max(0, map.Count(v => v <= x) - 1);
                    int lo = buckets.Lower[key >> DynamicCodeBuckets.Shift];
                    if (lo + 1 < map.Length && map[lo + 1] <= x) lo++;
                    Assert.AreEqual(expected, lo, $"x = {x:R}");
                }
            }
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
