using System.Text.Json;

namespace Microsoft.ML.Peft.Tests.Tensors;

/// <summary>Reads Fixtures/engine/engine_reference.json, written by build/reference/engine_reference.py (PyTorch 1.13).</summary>
internal static class EngineReference
{
    private static readonly Lazy<JsonDocument> Document = new(() =>
        JsonDocument.Parse(File.ReadAllText(TestPaths.Fixture("engine", "engine_reference.json"))));

    public static JsonElement Root => Document.Value.RootElement;

    public static float[] Floats(this JsonElement e) =>
        e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().SelectMany(Flatten).ToArray() : [(float)e.GetDouble()];

    public static int[] Ints(this JsonElement e) => e.EnumerateArray().Select(v => v.GetInt32()).ToArray();

    private static IEnumerable<float> Flatten(JsonElement e) =>
        e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().SelectMany(Flatten) : [(float)e.GetDouble()];
}
