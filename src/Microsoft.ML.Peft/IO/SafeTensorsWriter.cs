using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Microsoft.ML.Peft.IO;

/// <summary>
/// Builds a <c>.safetensors</c> file laid out exactly as the reference writer (huggingface/safetensors) lays it out:
/// tensors sorted by descending dtype alignment and then by name, stored contiguously; compact header JSON with
/// <c>__metadata__</c> first; header padded with spaces to a multiple of 8 bytes so that the data area is 8-byte
/// aligned. Files are saved atomically (<see cref="AtomicFile"/>).
/// </summary>
/// <remarks>Tensor data is referenced, not copied, until <see cref="Save"/> or <see cref="ToArray"/> writes it.</remarks>
public sealed class SafeTensorsWriter
{
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly List<Entry> _entries = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly IReadOnlyDictionary<string, string>? _metadata;

    /// <summary>A writer whose header carries the metadata PyTorch writers use: <c>{"format":"pt"}</c>.</summary>
    public SafeTensorsWriter() : this(new Dictionary<string, string> { ["format"] = "pt" })
    {
    }

    /// <summary>A writer with the given <c>__metadata__</c> (null: no metadata member at all).</summary>
    public SafeTensorsWriter(IReadOnlyDictionary<string, string>? metadata) => _metadata = metadata;

    /// <summary>Number of tensors added so far.</summary>
    public int Count => _entries.Count;

    /// <summary>Adds raw little-endian bytes of a row-major tensor.</summary>
    public void Add(string name, CheckpointDType dtype, ReadOnlySpan<int> shape, ReadOnlyMemory<byte> data) =>
        Add(new Entry(name, dtype, shape.ToArray(), data, default, null));

    /// <summary>Adds an fp32 tensor.</summary>
    public void Add(string name, ReadOnlyMemory<float> data, params ReadOnlySpan<int> shape) =>
        Add(new Entry(name, CheckpointDType.F32, shape.ToArray(), default, data, null));

    /// <summary>
    /// Adds a tensor from another source under <paramref name="name"/> (default: its own name). Its bytes are read
    /// when the file is written, so the source must stay open until then.
    /// </summary>
    public void Add(TensorView tensor, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        Add(new Entry(name ?? tensor.Name, tensor.DType, tensor.Shape.ToArray(), default, default, tensor));
    }

    private void Add(Entry entry)
    {
        string name = entry.Name;
        ReadOnlySpan<int> shape = entry.Shape;
        CheckpointDType dtype = entry.DType;
        long length = entry.Length;
        long elements = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"tensor '{name}': negative dimension {d}", nameof(entry));
            elements = checked(elements * d);
        }
        long expected = checked(elements * dtype.SizeInBytes());
        if (length != expected)
            throw new ArgumentException(
                $"tensor '{name}': {dtype.ToSafeTensorsName()}[{string.Join(", ", entry.Shape)}] needs {expected} bytes, got {length}",
                nameof(entry));
        if (name == SafeTensorsHeader.MetadataKey)
            throw new ArgumentException($"'{name}' is reserved for the header metadata", nameof(entry));
        if (!_names.Add(name)) throw new ArgumentException($"tensor '{name}' was already added", nameof(entry));
        _entries.Add(entry);
    }

    /// <summary>Writes the file atomically: a temporary file in the same folder, flushed, then renamed over <paramref name="path"/>.</summary>
    public void Save(string path)
    {
        var ordered = Layout();
        byte[] header = BuildHeader(ordered);
        AtomicFile.Write(path, stream => WriteTo(stream, header, ordered));
    }

    /// <summary>The complete file as a byte array (small files and tests).</summary>
    public byte[] ToArray()
    {
        var ordered = Layout();
        byte[] header = BuildHeader(ordered);
        using var stream = new MemoryStream();
        WriteTo(stream, header, ordered);
        return stream.ToArray();
    }

    private static void WriteTo(Stream stream, byte[] header, List<Entry> ordered)
    {
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);
        foreach (var e in ordered) e.WriteTo(stream);
    }

    /// <summary>The reference writer's order: larger dtypes first (keeps every tensor aligned), then by UTF-8 name.</summary>
    private List<Entry> Layout()
    {
        var ordered = new List<Entry>(_entries);
        ordered.Sort(static (a, b) =>
        {
            int byDType = ((int)b.DType).CompareTo((int)a.DType);
            return byDType != 0 ? byDType : a.Utf8Name.AsSpan().SequenceCompareTo(b.Utf8Name);
        });
        return ordered;
    }

    private byte[] BuildHeader(List<Entry> ordered)
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, JsonOptions))
        {
            json.WriteStartObject();
            if (_metadata is not null)
            {
                json.WriteStartObject(SafeTensorsHeader.MetadataKey);
                foreach (var (key, value) in _metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var e in ordered)
            {
                json.WriteStartObject(e.Name);
                json.WriteString("dtype", e.DType.ToSafeTensorsName());
                json.WriteStartArray("shape");
                foreach (int d in e.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                offset += e.Length;
                json.WriteNumberValue(offset);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int padding = (int)((8 - buffer.Length % 8) % 8);
        for (int i = 0; i < padding; i++) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }

    /// <summary>One tensor to write; exactly one of <see cref="Bytes"/>, <see cref="Floats"/>, <see cref="View"/> holds its data.</summary>
    private sealed record Entry(string Name, CheckpointDType DType, int[] Shape,
        ReadOnlyMemory<byte> Bytes, ReadOnlyMemory<float> Floats, TensorView? View)
    {
        public byte[] Utf8Name { get; } = Encoding.UTF8.GetBytes(Name ?? throw new ArgumentNullException(nameof(Name)));

        public long Length => View?.ByteLength ?? (Floats.IsEmpty ? Bytes.Length : (long)Floats.Length * sizeof(float));

        public void WriteTo(Stream stream)
        {
            if (View is not null) WriteLarge(stream, View);
            // Floats are little-endian on every platform this library targets: write their bytes as they are.
            else if (!Floats.IsEmpty) stream.Write(MemoryMarshal.AsBytes(Floats.Span));
            else stream.Write(Bytes.Span);
        }

        private static void WriteLarge(Stream stream, TensorView view)
        {
            // Views over 2 GiB cannot be one span: write them in 1 GiB slices from the raw pointer.
            const int Chunk = 1 << 30;
            for (long done = 0; done < view.ByteLength; done += Chunk)
            {
                int n = (int)Math.Min(Chunk, view.ByteLength - done);
                unsafe
                {
                    stream.Write(new ReadOnlySpan<byte>((byte*)view.DataPointer + done, n));
                }
            }
        }
    }
}
