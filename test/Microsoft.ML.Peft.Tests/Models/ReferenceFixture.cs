using System.Text;
using System.Text.Json;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Models;

/// <summary>
/// A PyTorch reference fixture (build/reference/*.py → Fixtures/reference/...): the .safetensors tensors as engine
/// tensors (float32 copies; int64 ids/positions narrowed to int32; float 1/0 masks as int32) and the .json beside it.
/// </summary>
internal sealed class ReferenceFixture : IDisposable
{
    private readonly SafeTensorsFile file;

    private ReferenceFixture(string path)
    {
        file = SafeTensorsFile.Open(path);
        string json = Path.ChangeExtension(path, ".json");
        Json = File.Exists(json) ? JsonDocument.Parse(File.ReadAllText(json)).RootElement.Clone() : default;
    }

    /// <summary>The fixture's JSON description.</summary>
    public JsonElement Json { get; }

    /// <summary>Opens Fixtures/reference/<paramref name="relativePath"/> (a .safetensors file).</summary>
    public static ReferenceFixture Open(string relativePath) => new(TestPaths.Fixture("reference", relativePath));

    /// <summary>Whether the fixture has a tensor of that name.</summary>
    public bool Has(string name) => file.Contains(name);

    /// <summary>A float32 tensor (copied out of the file; created outside any scope).</summary>
    public Tensor Float(string name)
    {
        var view = file.GetTensor(name);
        using (TensorScope.Untracked()) return Tensor.From(view.ToFloat32Array(), [.. view.Shape]);
    }

    /// <summary>The float values in row-major order.</summary>
    public float[] Floats(string name) => file.GetTensor(name).ToFloat32Array();

    /// <summary>An int32 tensor from an int64 (ids, positions) or float 1/0 (mask) tensor.</summary>
    public Tensor Int(string name)
    {
        var view = file.GetTensor(name);
        using (TensorScope.Untracked()) return Tensor.FromInt32(Ints(name), [.. view.Shape]);
    }

    /// <summary>The values of an int64 or float tensor as int32.</summary>
    public int[] Ints(string name)
    {
        var view = file.GetTensor(name);
        return view.DType switch
        {
            CheckpointDType.I64 => view.AsSpan<long>().ToArray().Select(v => checked((int)v)).ToArray(),
            CheckpointDType.F32 => view.AsFloat32().ToArray().Select(v => (int)v).ToArray(),
            _ => throw new InvalidOperationException($"{name}: unexpected dtype {view.DType}"),
        };
    }

    public void Dispose() => file.Dispose();
}

/// <summary>Tolerance checks that report the worst element.</summary>
internal static class Close
{
    /// <summary>|actual − expected| ≤ atol + rtol·|expected| for every element (numpy.allclose), optionally only where <paramref name="where"/> is true.</summary>
    public static void Assert(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what, double atol = 1e-4, double rtol = 1e-3, Func<int, bool>? where = null)
    {
        Microsoft.VisualStudio.TestTools.UnitTesting.Assert.AreEqual(expected.Length, actual.Length, $"{what}: element count");
        double worst = -1;
        int worstIndex = -1, compared = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (where is not null && !where(i)) continue;
            compared++;
            double excess = Math.Abs((double)actual[i] - expected[i]) - (atol + rtol * Math.Abs(expected[i]));
            if (!(excess <= 0) && (worstIndex < 0 || double.IsNaN(excess) || excess > worst))
            {
                worst = double.IsNaN(excess) ? double.PositiveInfinity : excess;
                worstIndex = i;
            }
        }
        Microsoft.VisualStudio.TestTools.UnitTesting.Assert.IsTrue(compared > 0, $"{what}: nothing compared");
        if (worstIndex >= 0)
            Microsoft.VisualStudio.TestTools.UnitTesting.Assert.Fail($"{what}: element {worstIndex} is {actual[worstIndex]}, expected {expected[worstIndex]} (atol {atol}, rtol {rtol})");
    }

    /// <summary>Tensor overload.</summary>
    public static void Assert(Tensor expected, Tensor actual, string what, double atol = 1e-4, double rtol = 1e-3, Func<int, bool>? where = null)
    {
        CollectionAssert.AreEqual(expected.ShapeArray(), actual.ShapeArray(), $"{what}: shape {Describe(actual)} vs expected {Describe(expected)}");
        Assert(expected.ToArray(), actual.ToArray(), what, atol, rtol, where);
    }

    /// <summary>Largest absolute difference (for messages and measured numbers).</summary>
    public static double MaxAbs(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return m;
    }

    private static string Describe(Tensor t) => new StringBuilder("[").Append(string.Join(", ", t.ShapeArray())).Append(']').ToString();
}
