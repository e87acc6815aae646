using System.Text.Json;
using Microsoft.ML.Peft.Quantization;

namespace Microsoft.ML.Peft.Tests.Quantization;

/// <summary>Bit-for-bit parity with build/reference/quant_reference.py (bitsandbytes' CPU semantics in PyTorch).</summary>
[TestClass]
public sealed class QuantizedTensor4BitReferenceTests
{
    [TestMethod]
    public void EveryFixtureCase_CodesScalesAndDequantizedValuesAreIdentical()
    {
        QuantFixture fixture = QuantFixture.Instance;
        int cases = 0;
        foreach (JsonElement c in fixture.FourBitCases)
        {
            string key = c.GetProperty("key").GetString()!;
            float[] input = fixture.Floats("input." + c.GetProperty("tensor").GetString());
            int[] shape = [.. c.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32())];
            Assert.IsTrue(FourBitTypeNames.TryParse(c.GetProperty("quant_type").GetString(), out FourBitType type));
            int blockSize = c.GetProperty("blocksize").GetInt32();
            bool doubleQuant = c.GetProperty("double_quant").GetBoolean();

            var tensor = QuantizedTensor4Bit.Quantize(input, shape, type, blockSize, doubleQuant);

            CollectionAssert.AreEqual(fixture.Bytes(c.GetProperty("packed").GetString()!), tensor.PackedCodes.ToArray(), $"{key} packed codes");
            if (doubleQuant)
            {
                DoubleQuantizedScales dq = tensor.DoubleQuantized!;
                Assert.AreEqual(c.GetProperty("offset_bits").GetUInt32(), BitConverter.SingleToUInt32Bits(dq.Offset), $"{key} offset");
                CollectionAssert.AreEqual(fixture.Bytes(c.GetProperty("absmax").GetString()!), dq.Codes.ToArray(), $"{key} 8-bit absmax");
                CollectionAssert.AreEqual(fixture.Floats(c.GetProperty("nested_absmax").GetString()!), dq.NestedAbsmax.ToArray(), $"{key} nested absmax");
                // torch's own fp32 mean (summation order of its vector kernel) is within an ulp or two of ours.
                float torchMean = (float)c.GetProperty("torch_fp32_mean").GetDouble();
                Assert.AreEqual(torchMean, dq.Offset, MathF.Abs(torchMean) * 2.5e-7f + float.Epsilon, $"{key} torch mean");
            }
            else
            {
                CollectionAssert.AreEqual(fixture.Floats(c.GetProperty("absmax").GetString()!), tensor.Absmax.ToArray(), $"{key} absmax");
            }

            float[] expected = fixture.Floats(c.GetProperty("dequantized").GetString()!);
            float[] actual = tensor.Dequantize();
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.AreEqual(BitConverter.SingleToInt32Bits(expected[i]), BitConverter.SingleToInt32Bits(actual[i]),
                    $"{key} value {i}: reference {expected[i]:R}, ours {actual[i]:R}");
            }
            cases++;
        }
        Assert.AreEqual(48, cases, "fixture case count");
    }

    [TestMethod]
    public void SpecialBlocks_ZeroBlockAndPaddingNibble()
    {
        QuantFixture fixture = QuantFixture.Instance;
        float[] special = fixture.Floats("input.special_4x64");
        var tensor = QuantizedTensor4Bit.Quantize(special, [4, 64], FourBitType.NF4, 64, doubleQuant: false);
        Assert.AreEqual(0f, tensor.Absmax[0]);
        for (int i = 0; i < 32; i++) Assert.AreEqual(0x77, tensor.PackedCodes[i], "zero block holds NF4's zero code 7 in both nibbles");

        float[] odd = fixture.Floats("input.normal_4097");
        var oddTensor = QuantizedTensor4Bit.Quantize(odd, [4097], FourBitType.FP4, 64, doubleQuant: true);
        Assert.AreEqual(2049, oddTensor.PackedCodes.Length);
        Assert.AreEqual(0, oddTensor.PackedCodes[2048] & 0xF, "padding nibble is FP4's zero code 0");
    }
}
