using System.Buffers.Binary;
using System.Text.Json;

namespace Microsoft.ML.Peft.Tests.Quantization;

/// <summary>
/// Reads Fixtures/quant/quant_reference.{json,bin}, written by build/reference/quant_reference.py (PyTorch).
/// </summary>
internal sealed class QuantFixture
{
    private static readonly Lazy<QuantFixture> Shared = new(() => new QuantFixture());
    private readonly byte[] _blob;
    private readonly JsonElement _arrays;

    private QuantFixture()
    {
        _blob = File.ReadAllBytes(TestPaths.Fixture("quant", "quant_reference.bin"));
        Manifest = JsonDocument.Parse(File.ReadAllBytes(TestPaths.Fixture("quant", "quant_reference.json"))).RootElement;
        _arrays = Manifest.GetProperty("arrays");
    }

    public static QuantFixture Instance => Shared.Value;

    public JsonElement Manifest { get; }

    public IEnumerable<JsonElement> FourBitCases => Manifest.GetProperty("cases").EnumerateArray();

    public float[] Floats(string name)
    {
        (int offset, int count) = Locate(name, "f32");
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(_blob.AsSpan(offset + 4 * i));
        return values;
    }

    public byte[] Bytes(string name)
    {
        (int offset, int count) = Locate(name, "u8");
        return _blob.AsSpan(offset, count).ToArray();
    }

    public sbyte[] SBytes(string name)
    {
        (int offset, int count) = Locate(name, "i8");
        var values = new sbyte[count];
        for (int i = 0; i < count; i++) values[i] = unchecked((sbyte)_blob[offset + i]);
        return values;
    }

    public int[] Shape(string name) => [.. _arrays.GetProperty(name).GetProperty("shape").EnumerateArray().Select(e => e.GetInt32())];

    private (int Offset, int Count) Locate(string name, string dtype)
    {
        JsonElement entry = _arrays.GetProperty(name);
        Assert.AreEqual(dtype, entry.GetProperty("dtype").GetString(), $"dtype of fixture array {name}");
        return (entry.GetProperty("offset").GetInt32(), entry.GetProperty("count").GetInt32());
    }
}
