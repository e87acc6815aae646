using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace Microsoft.ML.Peft.Tests.IO;

/// <summary>Shared helpers for the checkpoint I/O tests: temp folders, hand-made safetensors bytes, fixture JSON.</summary>
internal static class IoTestHelpers
{
    /// <summary>A fresh folder under the system temp directory; deleted by <see cref="TempFolder.Dispose"/>.</summary>
    public sealed class TempFolder : IDisposable
    {
        public TempFolder() => Directory.CreateDirectory(Path);

        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "peft-io-" + Guid.NewGuid().ToString("N"));

        public string File(string name) => System.IO.Path.Combine(Path, name);

        public void Dispose()
        {
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>A safetensors file from a raw header string and a data area, with the given declared header length.</summary>
    public static byte[] RawSafeTensors(string headerJson, int dataLength, long? declaredLength = null)
    {
        byte[] header = Encoding.UTF8.GetBytes(headerJson);
        var file = new byte[8 + header.Length + dataLength];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)(declaredLength ?? header.Length));
        header.CopyTo(file, 8);
        for (int i = 0; i < dataLength; i++) file[8 + header.Length + i] = (byte)(i * 7);
        return file;
    }

    /// <summary>One tensor's expected dtype/shape/values as PyTorch reported them in a fixture JSON.</summary>
    public sealed record Expected(string DType, int[] Shape, double[] Values);

    public static Dictionary<string, Expected> ReadExpected(string jsonPath)
    {
        using var doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(jsonPath));
        var result = new Dictionary<string, Expected>(StringComparer.Ordinal);
        foreach (var t in doc.RootElement.EnumerateObject())
        {
            result[t.Name] = new Expected(
                t.Value.GetProperty("dtype").GetString()!,
                t.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                t.Value.GetProperty("values").EnumerateArray().Select(e => e.GetDouble()).ToArray());
        }
        return result;
    }

    /// <summary>Orders of the JSON file's members (the order PyTorch saw them).</summary>
    public static string[] ExpectedOrder(string jsonPath)
    {
        using var doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(jsonPath));
        return doc.RootElement.EnumerateObject().Select(p => p.Name).ToArray();
    }
}
