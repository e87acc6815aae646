using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Text.Json;

namespace Microsoft.ML.Peft.IO;

/// <summary>One tensor entry of a validated safetensors header; offsets are relative to the data area.</summary>
internal sealed record SafeTensorsEntry(string Name, CheckpointDType DType, ImmutableArray<int> Shape, long Begin, long End);

/// <summary>
/// Parses and validates a safetensors header without touching tensor data. The rules are those of the reference
/// implementation (huggingface/safetensors): 8-byte little-endian header length, header at most 100 MB and inside the
/// file, a JSON object whose <c>__metadata__</c> is a string→string map and whose other members are
/// <c>{"dtype","shape","data_offsets"}</c>; once sorted by offset the tensors must tile the data area exactly
/// (no gap, no overlap, nothing left over) and each byte range must equal element size × product(shape).
/// Every arithmetic step is overflow-checked, so hostile numbers produce a <see cref="SafeTensorsFormatException"/>
/// rather than a huge allocation or a wrapped offset.
/// </summary>
internal static class SafeTensorsHeader
{
    /// <summary>Largest header accepted, as in the reference implementation.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public const string MetadataKey = "__metadata__";

    /// <summary>Reads the header length from the first 8 bytes and checks it against the file length.</summary>
    public static int ReadHeaderLength(ReadOnlySpan<byte> prefix, long fileLength, string path)
    {
        if (fileLength < 8 || prefix.Length < 8)
            throw new SafeTensorsFormatException(path, null,
                $"file is {fileLength} bytes; a safetensors file starts with an 8-byte little-endian header length");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > MaxHeaderBytes)
            throw new SafeTensorsFormatException(path, null, $"header length {n} exceeds the {MaxHeaderBytes}-byte limit");
        if ((long)n > fileLength - 8)
            throw new SafeTensorsFormatException(path, null, $"header length {n} runs past the end of the {fileLength}-byte file");
        if (n < 2)
            throw new SafeTensorsFormatException(path, null, $"header length {n} is too small for a JSON object");
        return (int)n;
    }

    /// <summary>Validates the header JSON against a data area of <paramref name="dataLength"/> bytes.</summary>
    public static (List<SafeTensorsEntry> Entries, Dictionary<string, string> Metadata) Parse(
        ReadOnlySpan<byte> header, long dataLength, string path)
    {
        // The JSON parser defers UTF-8 checks inside strings until they are read; check the whole header first.
        if (!System.Text.Unicode.Utf8.IsValid(header))
            throw new SafeTensorsFormatException(path, null, "header is not valid UTF-8");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new SafeTensorsFormatException(path, null, $"header is not valid UTF-8 JSON: {e.Message}", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsFormatException(path, null, $"header must be a JSON object, found {root.ValueKind}");

            var entries = new List<SafeTensorsEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var member in root.EnumerateObject())
            {
                if (!seen.Add(member.Name))
                    throw new SafeTensorsFormatException(path, member.Name, "appears twice in the header");
                if (member.Name == MetadataKey) ReadMetadata(member.Value, metadata, path);
                else entries.Add(ReadEntry(member.Name, member.Value, dataLength, path));
            }

            CheckTiling(entries, dataLength, path);
            return (entries, metadata);
        }
    }

    private static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string path)
    {
        if (value.ValueKind == JsonValueKind.Null) return;
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsFormatException(path, MetadataKey, $"must be an object of strings, found {value.ValueKind}");
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw new SafeTensorsFormatException(path, MetadataKey,
                    $"value of '{item.Name}' must be a string, found {item.Value.ValueKind}");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw new SafeTensorsFormatException(path, MetadataKey, $"key '{item.Name}' appears twice");
        }
    }

    private static SafeTensorsEntry ReadEntry(string name, JsonElement value, long dataLength, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsFormatException(path, name, $"entry must be an object, found {value.ValueKind}");

        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new SafeTensorsFormatException(path, name, "missing string field 'dtype'");
        string dtypeName = dtypeElement.GetString()!;
        if (!CheckpointDTypes.TryParseSafeTensorsName(dtypeName, out var dtype))
            throw new SafeTensorsFormatException(path, name,
                $"unknown dtype '{dtypeName}' (known: {CheckpointDTypes.SupportedSafeTensorsNames})");

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new SafeTensorsFormatException(path, name, "missing array field 'shape'");
        var shape = ImmutableArray.CreateBuilder<int>(shapeElement.GetArrayLength());
        long elements = 1;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long d) || d < 0 || d > int.MaxValue)
                throw new SafeTensorsFormatException(path, name,
                    $"shape entry {dim.GetRawText()} is not an integer in [0, {int.MaxValue}]");
            shape.Add((int)d);
            elements = MultiplyOrThrow(elements, d, path, name, "product of the shape");
        }
        long byteCount = MultiplyOrThrow(elements, dtype.SizeInBytes(), path, name, "byte size (elements × dtype size)");

        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array
            || offsets.GetArrayLength() != 2)
            throw new SafeTensorsFormatException(path, name, "missing field 'data_offsets' = [begin, end]");
        long begin = ReadOffset(offsets[0], path, name), end = ReadOffset(offsets[1], path, name);
        if (begin > end)
            throw new SafeTensorsFormatException(path, name, $"data_offsets [{begin}, {end}] has begin > end");
        if (end > dataLength)
            throw new SafeTensorsFormatException(path, name,
                $"data_offsets [{begin}, {end}] run past the {dataLength}-byte data area");
        if (end - begin != byteCount)
            throw new SafeTensorsFormatException(path, name,
                $"data_offsets [{begin}, {end}] span {end - begin} bytes but {dtypeName}[{string.Join(", ", shape)}] needs {byteCount}");

        return new SafeTensorsEntry(name, dtype, shape.MoveToImmutable(), begin, end);
    }

    private static long ReadOffset(JsonElement element, string path, string name) =>
        element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out long v) && v >= 0
            ? v
            : throw new SafeTensorsFormatException(path, name, $"data offset {element.GetRawText()} is not a non-negative 64-bit integer");

    private static long MultiplyOrThrow(long a, long b, string path, string name, string what)
    {
        try
        {
            return checked(a * b);
        }
        catch (OverflowException)
        {
            throw new SafeTensorsFormatException(path, name, $"{what} overflows 64 bits");
        }
    }

    /// <summary>Sorted by offsets, the tensors must cover [0, dataLength) exactly once.</summary>
    private static void CheckTiling(List<SafeTensorsEntry> entries, long dataLength, string path)
    {
        entries.Sort(static (x, y) => x.Begin != y.Begin ? x.Begin.CompareTo(y.Begin) : x.End.CompareTo(y.End));
        long position = 0;
        string? previous = null;
        foreach (var e in entries)
        {
            if (e.Begin < position)
                throw new SafeTensorsFormatException(path, e.Name,
                    $"data_offsets [{e.Begin}, {e.End}] overlap tensor '{previous}' (which ends at {position})");
            if (e.Begin > position)
                throw new SafeTensorsFormatException(path, e.Name,
                    $"data_offsets [{e.Begin}, {e.End}] leave a gap of {e.Begin - position} bytes before them (tensors must be contiguous)");
            position = e.End;
            previous = e.Name;
        }
        if (position != dataLength)
            throw new SafeTensorsFormatException(path, null,
                $"tensors cover {position} bytes but the data area after the header is {dataLength} bytes");
    }
}
