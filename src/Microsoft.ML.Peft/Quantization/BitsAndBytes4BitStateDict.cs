using System.Globalization;
using System.Text;

namespace Microsoft.ML.Peft.Quantization;

/// <summary>
/// The named arrays bitsandbytes' <c>Linear4bit</c> writes for its weight (<c>QuantState.as_dict(packed=True)</c>,
/// keys prefixed by the weight's name), and the reverse with validation.
/// </summary>
/// <remarks>
/// <para>For a weight named <c>W</c> (e.g. <c>model.layers.0.self_attn.q_proj.weight</c>):</para>
/// <list type="bullet">
/// <item><c>W</c>: packed codes, U8, shape [ceil(n/2), 1];</item>
/// <item><c>W.absmax</c>: F32 [blocks], or U8 [blocks] when double-quantized;</item>
/// <item><c>W.quant_map</c>: F32 [16];</item>
/// <item><c>W.nested_absmax</c>: F32 [ceil(blocks/256)] and <c>W.nested_quant_map</c>: F32 [256] (double-quantized only);</item>
/// <item><c>W.quant_state.bitsandbytes__nf4</c> (or <c>__fp4</c>, <c>__int4</c>): U8 bytes of
/// <c>json.dumps</c> of quant_type, blocksize, dtype, shape and, when double-quantized, nested_blocksize,
/// nested_dtype, nested_offset — in that order, byte-identical to Python's output.</item>
/// </list>
/// <para>Int4 is this library's extension: bitsandbytes itself only reads nf4 and fp4 states.</para>
/// </remarks>
public static class BitsAndBytes4BitStateDict
{
    private const string QuantStateMarker = ".quant_state.bitsandbytes__";

    /// <summary>The arrays for <paramref name="tensor"/>, named after <paramref name="weightName"/>, in bitsandbytes' order.</summary>
    public static IReadOnlyList<QuantizedArray> ToArrays(QuantizedTensor4Bit tensor, string weightName = "weight")
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentException.ThrowIfNullOrEmpty(weightName);
        var arrays = new List<QuantizedArray>(6)
        {
            QuantizedArray.FromBytes(weightName, tensor.PackedCodes, [tensor.PackedCodes.Length, 1]),
        };
        DoubleQuantizedScales? dq = tensor.DoubleQuantized;
        arrays.Add(dq is null
            ? QuantizedArray.FromFloats(weightName + ".absmax", tensor.Absmax, [tensor.BlockCount])
            : QuantizedArray.FromBytes(weightName + ".absmax", dq.Codes, [dq.Count]));
        arrays.Add(QuantizedArray.FromFloats(weightName + ".quant_map", tensor.QuantMap, [16]));
        if (dq is not null)
        {
            arrays.Add(QuantizedArray.FromFloats(weightName + ".nested_absmax", dq.NestedAbsmax, [dq.NestedAbsmax.Length]));
            arrays.Add(QuantizedArray.FromFloats(weightName + ".nested_quant_map", dq.Map, [dq.Map.Length]));
        }
        byte[] state = Encoding.UTF8.GetBytes(QuantStateJson(tensor));
        arrays.Add(QuantizedArray.FromBytes(weightName + QuantStateMarker + tensor.QuantType.ToBitsAndBytesName(), state, [state.Length]));
        return arrays;
    }

    /// <summary>
    /// The packed quant state exactly as bitsandbytes' <c>pack_dict_to_tensor</c> writes it, e.g.
    /// <c>{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [32, 64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.0123}</c>.
    /// </summary>
    public static string QuantStateJson(QuantizedTensor4Bit tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var json = new StringBuilder(192);
        json.Append("{\"quant_type\": \"").Append(tensor.QuantType.ToBitsAndBytesName())
            .Append("\", \"blocksize\": ").Append(tensor.BlockSize.ToString(CultureInfo.InvariantCulture))
            .Append(", \"dtype\": \"").Append(tensor.SourceDType)
            .Append("\", \"shape\": [").AppendJoin(", ", tensor.Shape.Select(d => d.ToString(CultureInfo.InvariantCulture))).Append(']');
        if (tensor.DoubleQuantized is { } dq)
        {
            json.Append(", \"nested_blocksize\": ").Append(dq.BlockSize.ToString(CultureInfo.InvariantCulture))
                .Append(", \"nested_dtype\": \"float32\", \"nested_offset\": ").Append(PythonFloatFormat.Format(dq.Offset));
        }
        return json.Append('}').ToString();
    }

    /// <summary>
    /// Rebuilds the tensor stored under <paramref name="weightName"/> in <paramref name="arrays"/> (other keys are ignored).
    /// </summary>
    /// <exception cref="InvalidDataException">
    /// A piece is missing, malformed or inconsistent; the message names the key or tensor at fault.
    /// </exception>
    public static QuantizedTensor4Bit FromArrays(IReadOnlyDictionary<string, QuantizedArray> arrays, string weightName = "weight")
    {
        ArgumentNullException.ThrowIfNull(arrays);
        ArgumentException.ThrowIfNullOrEmpty(weightName);
        string[] stateKeys = [.. arrays.Keys.Where(k => k.StartsWith(weightName + QuantStateMarker, StringComparison.Ordinal))];
        if (stateKeys.Length != 1)
        {
            throw new InvalidDataException(stateKeys.Length == 0
                ? $"{weightName}: no '{weightName}{QuantStateMarker}<nf4|fp4|int4>' entry; is this a bitsandbytes 4-bit weight?"
                : $"{weightName}: several quant states ({string.Join(", ", stateKeys)}).");
        }
        string stateKey = stateKeys[0];
        string typeName = stateKey[(weightName.Length + QuantStateMarker.Length)..];
        if (!FourBitTypeNames.TryParse(typeName, out FourBitType keyType))
            throw new InvalidDataException($"{stateKey}: unknown quant type '{typeName}' (expected nf4, fp4 or int4).");

        QuantStateFields state = QuantStateFields.Parse(stateKey, arrays[stateKey].ToBytes());
        if (state.QuantType != keyType)
            throw new InvalidDataException($"{stateKey}: quant_type '{state.QuantType.ToBitsAndBytesName()}' disagrees with the key suffix '{typeName}'.");

        long count = 1;
        foreach (int dim in state.Shape) count *= dim;
        int blocks = (int)((count + state.BlockSize - 1) / state.BlockSize);

        byte[] packed = Require(arrays, weightName, QuantizedArrayDType.UInt8, (count + 1) / 2,
            $"shape [{string.Join(", ", state.Shape)}] in {stateKey} holds {count} values").ToBytes();
        float[] quantMap = Require(arrays, weightName + ".quant_map", QuantizedArrayDType.Float32, 16, "a 4-bit code").ToFloats();
        ReadOnlySpan<float> expected = FourBitCodebook.For(state.QuantType).Values;
        for (int i = 0; i < 16; i++)
        {
            // bitsandbytes' kernels use the built-in table of the quant type; a stored map must agree (QuantState.__eq__ tolerance).
            if (!(Math.Abs(quantMap[i] - expected[i]) <= 1e-6f))
                throw new InvalidDataException($"{weightName}.quant_map[{i}] = {quantMap[i]} but {typeName} code {i} is {expected[i]}.");
        }

        string absmaxName = weightName + ".absmax";
        if (!state.IsNested)
        {
            float[] absmax = Require(arrays, absmaxName, QuantizedArrayDType.Float32, blocks,
                $"{count} values in blocks of {state.BlockSize}").ToFloats();
            return Build(absmaxName, () => QuantizedTensor4Bit.FromParts(state.QuantType, state.Shape, state.BlockSize, packed, absmax, null, state.DType));
        }

        byte[] codes = Require(arrays, absmaxName, QuantizedArrayDType.UInt8, blocks,
            $"{count} values in blocks of {state.BlockSize}, double-quantized").ToBytes();
        int nestedBlocks = (blocks + state.NestedBlockSize - 1) / state.NestedBlockSize;
        float[] nestedAbsmax = Require(arrays, weightName + ".nested_absmax", QuantizedArrayDType.Float32, nestedBlocks,
            $"{blocks} scales in nested blocks of {state.NestedBlockSize}").ToFloats();
        float[] nestedMap = Require(arrays, weightName + ".nested_quant_map", QuantizedArrayDType.Float32, 256, "an 8-bit code").ToFloats();
        return Build(weightName + ".nested_absmax", () =>
        {
            var dq = DoubleQuantizedScales.FromParts(codes, nestedAbsmax, nestedMap, state.NestedBlockSize, state.NestedOffset);
            return QuantizedTensor4Bit.FromParts(state.QuantType, state.Shape, state.BlockSize, packed, null, dq, state.DType);
        });
    }

    private static QuantizedArray Require(IReadOnlyDictionary<string, QuantizedArray> arrays, string name,
        QuantizedArrayDType dtype, long count, string why)
    {
        if (!arrays.TryGetValue(name, out QuantizedArray? array)) throw new InvalidDataException($"{name}: missing.");
        if (array.DType != dtype)
            throw new InvalidDataException($"{name}: expected {(dtype == QuantizedArrayDType.UInt8 ? "U8" : "F32")}, found {array.SafeTensorsDType}.");
        if (array.ElementCount != count)
            throw new InvalidDataException($"{name}: has {array.ElementCount} elements but {why}, which needs {count}.");
        return array;
    }

    private static QuantizedTensor4Bit Build(string context, Func<QuantizedTensor4Bit> build)
    {
        try
        {
            return build();
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{context}: {e.Message}", e);
        }
    }
}
