using System.Globalization;
using System.Numerics;
using System.Text;

namespace Microsoft.ML.Peft.Tuners;

/// <summary>Python's number formatting where PEFT's printed output depends on it.</summary>
internal static class PythonFormat
{
    /// <summary>
    /// PEFT's <c>f"trainable params: {t:,d} || all params: {a:,d} || trainable%: {100 * t / a:.4f}"</c>: the
    /// percentage is the correctly rounded double of 100·t/a (as Python's int true division), printed with 4
    /// decimals rounded half-to-even on its exact binary value (as Python's format does).
    /// </summary>
    public static string TrainableParametersLine(long trainable, long all)
    {
        string percent = all == 0 ? "nan" : FixedPoint((double)(100 * (BigInteger)trainable) / all, 4);
        return $"trainable params: {Grouped(trainable)} || all params: {Grouped(all)} || trainable%: {percent}";
    }

    /// <summary>An integer with "," thousands separators (Python's "{:,d}").</summary>
    public static string Grouped(long value) => value.ToString("#,0", CultureInfo.InvariantCulture);

    /// <summary>
    /// A double with <paramref name="decimals"/> digits after the point, rounded half-to-even on the exact binary
    /// value (Python's "{:.Nf}"); .NET's "F" format rounds ties away from zero, so this is done with big integers.
    /// </summary>
    public static string FixedPoint(double value, int decimals)
    {
        if (!double.IsFinite(value)) return double.IsNaN(value) ? "nan" : value > 0 ? "inf" : "-inf";
        bool negative = value < 0 || (value == 0 && double.IsNegative(value));
        long bits = BitConverter.DoubleToInt64Bits(Math.Abs(value));
        int exponent = (int)((bits >> 52) & 0x7FF);
        long fraction = bits & 0xFFFFFFFFFFFFFL;
        BigInteger mantissa = exponent == 0 ? fraction : fraction | (1L << 52);
        int power = (exponent == 0 ? 1 : exponent) - 1075; // value = mantissa · 2^power

        // scaled = value · 10^decimals as an exact fraction numerator / denominator.
        BigInteger numerator = mantissa * BigInteger.Pow(10, decimals);
        BigInteger denominator = BigInteger.One;
        if (power >= 0) numerator <<= power;
        else denominator <<= -power;
        var quotient = BigInteger.DivRem(numerator, denominator, out var remainder);
        int compare = (remainder * 2).CompareTo(denominator);
        if (compare > 0 || (compare == 0 && !quotient.IsEven)) quotient += 1;

        string digits = quotient.ToString(CultureInfo.InvariantCulture).PadLeft(decimals + 1, '0');
        var text = new StringBuilder();
        if (negative) text.Append('-');
        text.Append(digits, 0, digits.Length - decimals);
        if (decimals > 0) text.Append('.').Append(digits, digits.Length - decimals, decimals);
        return text.ToString();
    }
}
