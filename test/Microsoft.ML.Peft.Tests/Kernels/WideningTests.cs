using Microsoft.ML.Peft.Kernels;

namespace Microsoft.ML.Peft.Tests.Kernels;

/// <summary>The 16-bit to fp32 widening used while packing, checked exhaustively against the runtime's conversions.</summary>
[TestClass]
public sealed unsafe class WideningTests
{
    [TestMethod]
    [DataRow((int)GemmIsa.Scalar)]
    [DataRow((int)GemmIsa.Avx2)]
    [DataRow((int)GemmIsa.Avx512)]
    public void HalfToSingle_EveryBitPattern_MatchesRuntimeConversionBitwise(int isaValue)
    {
        // All 65536 patterns: zeros, subnormals, normals, infinities and NaNs (payload and sign included).
        var isa = (GemmIsa)isaValue;
        SgemmShapeTests.RequireIsa(isa);
        var halves = new Half[65536 + 7];
        for (int i = 0; i < halves.Length; i++) halves[i] = BitConverter.UInt16BitsToHalf((ushort)i);
        var widened = new float[halves.Length];
        fixed (Half* src = halves)
        fixed (float* dst = widened)
        {
            Widening.HalfToSingle(src, dst, halves.Length, isa);
        }

        for (int i = 0; i < halves.Length; i++)
        {
            uint expected = BitConverter.SingleToUInt32Bits((float)halves[i]);
            uint actual = BitConverter.SingleToUInt32Bits(widened[i]);
            if (expected != actual) Assert.Fail($"half 0x{i & 0xFFFF:X4}: got 0x{actual:X8}, expected 0x{expected:X8}");
        }
    }

    [TestMethod]
    [DataRow((int)GemmIsa.Scalar)]
    [DataRow((int)GemmIsa.Avx2)]
    [DataRow((int)GemmIsa.Avx512)]
    public void Bf16ToSingle_EveryBitPattern_IsTheUpperHalfOfTheFloat(int isaValue)
    {
        var isa = (GemmIsa)isaValue;
        SgemmShapeTests.RequireIsa(isa);
        var bits = new ushort[65536 + 5];
        for (int i = 0; i < bits.Length; i++) bits[i] = (ushort)i;
        var widened = new float[bits.Length];
        fixed (ushort* src = bits)
        fixed (float* dst = widened)
        {
            Widening.Bf16ToSingle(src, dst, bits.Length, isa);
        }

        for (int i = 0; i < bits.Length; i++)
        {
            uint expected = (uint)(i & 0xFFFF) << 16;
            uint actual = BitConverter.SingleToUInt32Bits(widened[i]);
            if (expected != actual) Assert.Fail($"bf16 0x{i & 0xFFFF:X4}: got 0x{actual:X8}, expected 0x{expected:X8}");
        }
    }
}
