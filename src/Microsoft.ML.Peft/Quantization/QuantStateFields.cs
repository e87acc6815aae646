using System.Text;
using System.Text.Json;

namespace Microsoft.ML.Peft.Quantization;

/// <summary>
/// The non-tensor items of a bitsandbytes 4-bit quant state, parsed and validated from the packed JSON bytes.
/// Every error names the state-dict key and the JSON field at fault.
/// </summary>
internal sealed class QuantStateFields
{
    private static readonly string[] KnownKeys =
        ["quant_type", "blocksize", "dtype", "shape", "nested_blocksize", "nested_dtype", "nested_offset"];

    private static readonly string[] NestedKeys = ["nested_blocksize", "nested_dtype", "nested_offset"];

    public required FourBitType QuantType { get; init; }

    public required int BlockSize { get; init; }

    public required string DType { get; init; }

    public required int[] Shape { get; init; }

    public bool IsNested { get; init; }

    public int NestedBlockSize { get; init; }

    public float NestedOffset { get; init; }

    public static QuantStateFields Parse(string key, byte[] utf8Json)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(utf8Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{key}: the packed quant state is not valid JSON ({e.Message}).", e);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"{key}: the packed quant state is not UTF-8 ({e.Message}).", e);
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{key}: the packed quant state is not a JSON object.");
            foreach (JsonProperty property in root.EnumerateObject())
            {
                if (Array.IndexOf(KnownKeys, property.Name) < 0)
                    throw new InvalidDataException($"{key}: unknown field '{property.Name}' (expected {string.Join(", ", KnownKeys)}).");
            }

            string typeName = String(root, key, "quant_type");
            if (!FourBitTypeNames.TryParse(typeName, out FourBitType type))
                throw new InvalidDataException($"{key}: 'quant_type' is '{typeName}', expected nf4, fp4 or int4.");
            int blockSize = Int(root, key, "blocksize");
            if (!QuantizedTensor4Bit.IsValidBlockSize(blockSize))
                throw new InvalidDataException($"{key}: 'blocksize' {blockSize} is not one of 32, 64, 128, 256, 512, 1024, 2048, 4096.");
            string dtype = String(root, key, "dtype");
            if (dtype is not ("float32" or "float16" or "bfloat16"))
                throw new InvalidDataException($"{key}: 'dtype' is '{dtype}', expected float32, float16 or bfloat16.");
            int[] shape = ShapeOf(root, key);

            int present = NestedKeys.Count(k => root.TryGetProperty(k, out _));
            if (present is not (0 or 3))
            {
                string missing = string.Join(", ", NestedKeys.Where(k => !root.TryGetProperty(k, out _)));
                throw new InvalidDataException($"{key}: double-quantization fields incomplete, missing '{missing}'.");
            }
            if (present == 0) return new QuantStateFields { QuantType = type, BlockSize = blockSize, DType = dtype, Shape = shape };

            int nestedBlockSize = Int(root, key, "nested_blocksize");
            if (nestedBlockSize < 1) throw new InvalidDataException($"{key}: 'nested_blocksize' is {nestedBlockSize}, expected a positive size (256).");
            string nestedDType = String(root, key, "nested_dtype");
            if (nestedDType != "float32") throw new InvalidDataException($"{key}: 'nested_dtype' is '{nestedDType}', expected float32.");
            JsonElement offsetElement = root.GetProperty("nested_offset");
            if (offsetElement.ValueKind != JsonValueKind.Number || !offsetElement.TryGetDouble(out double offset) || !double.IsFinite(offset))
                throw new InvalidDataException($"{key}: 'nested_offset' must be a finite number, found {offsetElement.GetRawText()}.");
            return new QuantStateFields
            {
                QuantType = type, BlockSize = blockSize, DType = dtype, Shape = shape,
                IsNested = true, NestedBlockSize = nestedBlockSize, NestedOffset = (float)offset,
            };
        }
    }

    private static string String(JsonElement root, string key, string field)
    {
        if (!root.TryGetProperty(field, out JsonElement value)) throw new InvalidDataException($"{key}: missing '{field}'.");
        if (value.ValueKind != JsonValueKind.String) throw new InvalidDataException($"{key}: '{field}' must be a string, found {value.GetRawText()}.");
        return value.GetString()!;
    }

    private static int Int(JsonElement root, string key, string field)
    {
        if (!root.TryGetProperty(field, out JsonElement value)) throw new InvalidDataException($"{key}: missing '{field}'.");
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int result))
            throw new InvalidDataException($"{key}: '{field}' must be an integer, found {value.GetRawText()}.");
        return result;
    }

    private static int[] ShapeOf(JsonElement root, string key)
    {
        if (!root.TryGetProperty("shape", out JsonElement value)) throw new InvalidDataException($"{key}: missing 'shape'.");
        if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() == 0)
            throw new InvalidDataException($"{key}: 'shape' must be a non-empty list of sizes, found {value.GetRawText()}.");
        var shape = new int[value.GetArrayLength()];
        long count = 1;
        int i = 0;
        foreach (JsonElement dim in value.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt32(out int size) || size < 1)
                throw new InvalidDataException($"{key}: 'shape' entry {i} is {dim.GetRawText()}, expected a positive integer.");
            shape[i++] = size;
            count *= size;
            if (count > Array.MaxLength) throw new InvalidDataException($"{key}: 'shape' {value.GetRawText()} is too large.");
        }
        return shape;
    }
}
