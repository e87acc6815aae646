using System.Runtime.InteropServices;
using Microsoft.ML.Peft.IO;

namespace Microsoft.ML.Peft.Tests.IO;

[TestClass]
public sealed class Float32ConversionTests
{
    /// <summary>The vectorised BF16 path must equal the defining formula (bits &lt;&lt; 16) for every length and tail.</summary>
    [TestMethod]
    public void BFloat16_EqualsShiftDefinition_ForAllTailLengths()
    {
        var rng = new Random(5);
        for (int n = 0; n <= 70; n++)
        {
            var bits = new ushort[n];
            for (int i = 0; i < n; i++) bits[i] = (ushort)rng.Next(65536);
            var result = new float[n];
            Float32Conversion.BFloat16ToSingle(bits, result);
            for (int i = 0; i < n; i++)
            {
                float expected = BitConverter.Int32BitsToSingle(bits[i] << 16);
                Assert.AreEqual(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(result[i]), $"n={n} i={i}");
            }
        }
    }

    /// <summary>FP8 values from the OCP FP8 specification: E4M3 max 448, min subnormal 2^-9, NaN at S.1111.111; E5M2 is IEEE-like.</summary>
    [TestMethod]
    [DataRow(CheckpointDType.F8E4M3, (byte)0x38, 1.0f)]
    [DataRow(CheckpointDType.F8E4M3, (byte)0x7E, 448f)]
    [DataRow(CheckpointDType.F8E4M3, (byte)0x01, 0.001953125f)]
    [DataRow(CheckpointDType.F8E4M3, (byte)0x08, 0.015625f)]
    [DataRow(CheckpointDType.F8E4M3, (byte)0xC4, -3.0f)]
    [DataRow(CheckpointDType.F8E5M2, (byte)0x3C, 1.0f)]
    [DataRow(CheckpointDType.F8E5M2, (byte)0x7B, 57344f)]
    [DataRow(CheckpointDType.F8E5M2, (byte)0x01, 1.52587890625e-05f)]
    [DataRow(CheckpointDType.F8E5M2, (byte)0xC2, -3.0f)]
    public void Fp8_MatchesSpecificationValues(CheckpointDType dtype, byte bits, float expected)
    {
        var result = new float[1];
        Float32Conversion.Convert(dtype, [bits], result);
        Assert.AreEqual(expected, result[0]);
    }

    [TestMethod]
    public void Fp8_SpecialValues()
    {
        var result = new float[3];
        Float32Conversion.Convert(CheckpointDType.F8E4M3, [0x7F, 0xFF, 0x80], result);
        Assert.IsTrue(float.IsNaN(result[0]) && float.IsNaN(result[1]));
        Assert.IsTrue(float.IsNegative(result[2]) && result[2] == 0);
        Float32Conversion.Convert(CheckpointDType.F8E5M2, [0x7C, 0xFC, 0x7F], result);
        Assert.AreEqual(float.PositiveInfinity, result[0]);
        Assert.AreEqual(float.NegativeInfinity, result[1]);
        Assert.IsTrue(float.IsNaN(result[2]));
    }

    [TestMethod]
    public void Integers_AndBool_Widen()
    {
        var result = new float[2];
        Float32Conversion.Convert(CheckpointDType.U64, MemoryMarshal.AsBytes<ulong>([ulong.MaxValue, 3]), result);
        Assert.AreEqual(1.8446744073709552e19f, result[0]);
        Float32Conversion.Convert(CheckpointDType.Bool, [0, 7], result);
        CollectionAssert.AreEqual(new[] { 0f, 1f }, result);
        Float32Conversion.Convert(CheckpointDType.U16, MemoryMarshal.AsBytes<ushort>([65535, 1]), result);
        CollectionAssert.AreEqual(new[] { 65535f, 1f }, result);
    }
}
