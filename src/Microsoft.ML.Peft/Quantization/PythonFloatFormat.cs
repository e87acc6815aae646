using System.Globalization;
using System.Text;

namespace Microsoft.ML.Peft.Quantization;

/// <summary>
/// Formats a double exactly as Python's <c>repr(float)</c> (and so <c>json.dumps</c>) does, so that the packed quant
/// state we write is byte-identical to bitsandbytes'.
/// </summary>
/// <remarks>
/// Both use the shortest digit string that round-trips. Python writes it in positional form when the decimal exponent
/// d (value = 0.digits × 10^d) satisfies -4 &lt; d ≤ 16 — always with a fractional part ("1.0", "0.0001") — and otherwise
/// as digits[0] '.' rest 'e' sign two-or-more-digit exponent ("1e-05", "1.0350130587349531e-39", "1e+16").
/// </remarks>
internal static class PythonFloatFormat
{
    public static string Format(double value)
    {
        if (!double.IsFinite(value)) throw new ArgumentException($"{value} has no JSON representation.", nameof(value));
        if (value == 0) return double.IsNegative(value) ? "-0.0" : "0.0";

        // .NET's "R" is the shortest round-trip string too; take its digits and exponent apart.
        string shortest = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture);
        int exponentAt = shortest.IndexOfAny(['E', 'e']);
        string mantissa = exponentAt < 0 ? shortest : shortest[..exponentAt];
        int exponent = exponentAt < 0 ? 0 : int.Parse(shortest[(exponentAt + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        int point = mantissa.IndexOf('.', StringComparison.Ordinal);
        string digits = point < 0 ? mantissa : mantissa.Remove(point, 1);
        int integerDigits = point < 0 ? mantissa.Length : point;

        int leadingZeros = 0;
        while (leadingZeros < digits.Length - 1 && digits[leadingZeros] == '0') leadingZeros++;
        digits = digits[leadingZeros..].TrimEnd('0');
        int decimalPoint = integerDigits - leadingZeros + exponent; // value = 0.digits × 10^decimalPoint

        var text = new StringBuilder(32);
        if (value < 0) text.Append('-');
        if (decimalPoint is > -4 and <= 16)
        {
            if (decimalPoint <= 0) text.Append("0.").Append('0', -decimalPoint).Append(digits);
            else if (decimalPoint >= digits.Length) text.Append(digits).Append('0', decimalPoint - digits.Length).Append(".0");
            else text.Append(digits, 0, decimalPoint).Append('.').Append(digits, decimalPoint, digits.Length - decimalPoint);
        }
        else
        {
            text.Append(digits[0]);
            if (digits.Length > 1) text.Append('.').Append(digits, 1, digits.Length - 1);
            int scientific = decimalPoint - 1;
            text.Append('e').Append(scientific < 0 ? '-' : '+').Append(Math.Abs(scientific).ToString("00", CultureInfo.InvariantCulture));
        }
        return text.ToString();
    }
}
