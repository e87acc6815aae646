namespace Microsoft.ML.Peft.Quantization;

/// <summary>
/// A weight matrix in 8 bits with one fp32 scale per row: bitsandbytes' <c>int8_vectorwise_quant</c> (the weight side
/// of LLM.int8()) <b>without</b> the outlier decomposition — every column is quantized, none is kept in 16 bits
/// (bitsandbytes' threshold 0.0, the <c>Linear8bitLt</c> default).
/// </summary>
/// <remarks>
/// code = round(x · fl(127 / rowAbsmax)) with round-half-to-even (torch.round), so codes lie in [-127, 127];
/// value = fl(fl(code · rowAbsmax) · fl(1/127)) as bitsandbytes' <c>int8_vectorwise_dequant</c> multiplies by
/// 7.874015718698502e-3. An all-zero row keeps scale 0 and codes 0 (bitsandbytes would divide by zero); a row
/// whose 127 / absmax overflows (absmax below ~3.7e-37) divides instead.
/// </remarks>
public sealed class Int8RowwiseMatrix
{
    private const float InverseOf127 = (float)7.874015718698502e-3;

    private readonly sbyte[] _codes;
    private readonly float[] _rowAbsmax;

    private Int8RowwiseMatrix(sbyte[] codes, float[] rowAbsmax, int rows, int columns)
    {
        _codes = codes;
        _rowAbsmax = rowAbsmax;
        Rows = rows;
        Columns = columns;
    }

    /// <summary>Number of rows (one scale each).</summary>
    public int Rows { get; }

    /// <summary>Number of columns.</summary>
    public int Columns { get; }

    /// <summary>Row-major int8 codes (bitsandbytes' <c>CB</c>).</summary>
    public ReadOnlySpan<sbyte> Codes => _codes;

    /// <summary>Per-row absolute maxima (bitsandbytes' <c>SCB</c>).</summary>
    public ReadOnlySpan<float> RowAbsmax => _rowAbsmax;

    /// <summary>Bytes held: one per value plus 4 per row.</summary>
    public long StorageBytes => _codes.Length + 4L * _rowAbsmax.Length;

    /// <summary>Quantizes a row-major <paramref name="rows"/>×<paramref name="columns"/> matrix.</summary>
    /// <exception cref="ArgumentException">The dimensions disagree with the data, or a value is not finite (its row and column are named).</exception>
    public static Int8RowwiseMatrix Quantize(ReadOnlySpan<float> matrix, int rows, int columns)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(columns, 1);
        if ((long)rows * columns != matrix.Length)
            throw new ArgumentException($"A {rows}×{columns} matrix has {(long)rows * columns} values, got {matrix.Length}.", nameof(matrix));
        var codes = new sbyte[matrix.Length];
        var scales = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> row = matrix.Slice(r * columns, columns);
            float max = 0f;
            for (int c = 0; c < columns; c++)
            {
                if (!float.IsFinite(row[c])) throw new ArgumentException($"matrix[{r}, {c}] is {row[c]}; only finite values can be quantized.", nameof(matrix));
                max = MathF.Max(max, MathF.Abs(row[c]));
            }
            scales[r] = max;
            if (max == 0f) continue;
            float factor = 127f / max;
            bool divide = float.IsInfinity(factor);
            Span<sbyte> output = codes.AsSpan(r * columns, columns);
            for (int c = 0; c < columns; c++)
                output[c] = (sbyte)MathF.Round(divide ? row[c] * 127f / max : row[c] * factor, MidpointRounding.ToEven);
        }
        return new Int8RowwiseMatrix(codes, scales, rows, columns);
    }

    /// <summary>Row <paramref name="row"/>, dequantized into <paramref name="destination"/> (length <see cref="Columns"/>).</summary>
    public void DequantizeRow(int row, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Rows);
        if (destination.Length != Columns)
            throw new ArgumentException($"destination has {destination.Length} values; a row has {Columns}.", nameof(destination));
        float scale = _rowAbsmax[row];
        ReadOnlySpan<sbyte> codes = _codes.AsSpan(row * Columns, Columns);
        for (int c = 0; c < codes.Length; c++) destination[c] = codes[c] * scale * InverseOf127;
    }

    /// <summary>The whole matrix, dequantized (row-major).</summary>
    public float[] Dequantize()
    {
        var result = new float[_codes.Length];
        for (int r = 0; r < Rows; r++) DequantizeRow(r, result.AsSpan(r * Columns, Columns));
        return result;
    }
}
