using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Peft.IO;

/// <summary>
/// Widens raw little-endian tensor bytes of any <see cref="CheckpointDType"/> to fp32. F32 is a copy, F16 uses
/// TensorPrimitives (hardware half conversion), BF16 is a vectorised 16-bit shift; the rest are scalar loops because
/// they are rare in weights (integer buffers, FP8 scales).
/// </summary>
internal static class Float32Conversion
{
    private static readonly float[] F8E4M3Table = BuildF8E4M3Table();

    public static void Convert(CheckpointDType dtype, ReadOnlySpan<byte> source, Span<float> destination)
    {
        switch (dtype)
        {
            case CheckpointDType.F32:
                MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
                break;
            case CheckpointDType.F16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(source), destination);
                break;
            case CheckpointDType.BF16:
                BFloat16ToSingle(MemoryMarshal.Cast<byte, ushort>(source), destination);
                break;
            case CheckpointDType.F64:
                {
                    var s = MemoryMarshal.Cast<byte, double>(source);
                    for (int i = 0; i < s.Length; i++) destination[i] = (float)s[i];
                    break;
                }
            case CheckpointDType.I64:
                {
                    var s = MemoryMarshal.Cast<byte, long>(source);
                    for (int i = 0; i < s.Length; i++) destination[i] = s[i];
                    break;
                }
            case CheckpointDType.U64:
                {
                    var s = MemoryMarshal.Cast<byte, ulong>(source);
                    for (int i = 0; i < s.Length; i++) destination[i] = s[i];
                    break;
                }
            case CheckpointDType.I32:
                {
                    var s = MemoryMarshal.Cast<byte, int>(source);
                    for (int i = 0; i < s.Length; i++) destination[i] = s[i];
                    break;
                }
            case CheckpointDType.U32:
                {
                    var s = MemoryMarshal.Cast<byte, uint>(source);
                    for (int i = 0; i < s.Length; i++) destination[i] = s[i];
                    break;
                }
            case CheckpointDType.I16:
                {
                    var s = MemoryMarshal.Cast<byte, short>(source);
                    for (int i = 0; i < s.Length; i++) destination[i] = s[i];
                    break;
                }
            case CheckpointDType.U16:
                {
                    var s = MemoryMarshal.Cast<byte, ushort>(source);
                    for (int i = 0; i < s.Length; i++) destination[i] = s[i];
                    break;
                }
            case CheckpointDType.I8:
                {
                    var s = MemoryMarshal.Cast<byte, sbyte>(source);
                    for (int i = 0; i < s.Length; i++) destination[i] = s[i];
                    break;
                }
            case CheckpointDType.U8:
                for (int i = 0; i < source.Length; i++) destination[i] = source[i];
                break;
            case CheckpointDType.Bool:
                for (int i = 0; i < source.Length; i++) destination[i] = source[i] != 0 ? 1f : 0f;
                break;
            case CheckpointDType.F8E5M2:
                // E5M2 is exactly the high byte of an IEEE half: same exponent width and bias.
                for (int i = 0; i < source.Length; i++) destination[i] = (float)BitConverter.UInt16BitsToHalf((ushort)(source[i] << 8));
                break;
            case CheckpointDType.F8E4M3:
                for (int i = 0; i < source.Length; i++) destination[i] = F8E4M3Table[source[i]];
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype");
        }
    }

    /// <summary>
    /// bfloat16 → fp32: a bfloat16 is the top half of an fp32, so widening each 16-bit lane to 32 bits and shifting
    /// left by 16 is exact. 32 values per AVX-512 iteration.
    /// </summary>
    public static void BFloat16ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination too short", nameof(destination));
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref ushort src = ref MemoryMarshal.GetReference(source);
            ref float dst = ref MemoryMarshal.GetReference(destination);
            for (; i <= source.Length - Vector512<ushort>.Count; i += Vector512<ushort>.Count)
            {
                var v = Vector512.LoadUnsafe(ref src, (nuint)i);
                var (lo, hi) = Vector512.Widen(v);
                Vector512.ShiftLeft(lo, 16).AsSingle().StoreUnsafe(ref dst, (nuint)i);
                Vector512.ShiftLeft(hi, 16).AsSingle().StoreUnsafe(ref dst, (nuint)(i + Vector512<uint>.Count));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            ref ushort src = ref MemoryMarshal.GetReference(source);
            ref float dst = ref MemoryMarshal.GetReference(destination);
            for (; i <= source.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
            {
                var v = Vector256.LoadUnsafe(ref src, (nuint)i);
                var (lo, hi) = Vector256.Widen(v);
                Vector256.ShiftLeft(lo, 16).AsSingle().StoreUnsafe(ref dst, (nuint)i);
                Vector256.ShiftLeft(hi, 16).AsSingle().StoreUnsafe(ref dst, (nuint)(i + Vector256<uint>.Count));
            }
        }
        for (; i < source.Length; i++) destination[i] = BitConverter.Int32BitsToSingle(source[i] << 16);
    }

    /// <summary>
    /// FP8 E4M3 ("fn" variant used by safetensors/PyTorch float8_e4m3fn): bias 7, no infinities, S.1111.111 is NaN,
    /// exponent 0 is subnormal (mantissa/8 · 2^-6).
    /// </summary>
    private static float[] BuildF8E4M3Table()
    {
        var table = new float[256];
        for (int b = 0; b < 256; b++)
        {
            int sign = b >> 7, exponent = (b >> 3) & 0xF, mantissa = b & 0x7;
            float magnitude = (exponent, mantissa) switch
            {
                (15, 7) => float.NaN,
                (0, _) => mantissa / 8f * MathF.Pow(2, -6),
                _ => (1 + mantissa / 8f) * MathF.Pow(2, exponent - 7),
            };
            table[b] = sign == 1 ? -magnitude : magnitude;
        }
        return table;
    }
}
