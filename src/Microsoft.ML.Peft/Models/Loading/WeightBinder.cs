using System.Text;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Loading;

/// <summary>
/// Puts a checkpoint's tensors into a model whose module tree was built over placeholders: first validates every
/// name, shape and dtype against the tree (nothing is read or allocated until the whole checkpoint is known to fit),
/// then binds each parameter to its tensor — zero-copy where the dtype allows — and initialises the heads the
/// checkpoint lacks.
/// </summary>
internal static class WeightBinder
{
    private const int MaxListed = 12;

    public static ModelLoadReport Bind(PretrainedModel model, ITensorSource source, ModelLoadOptions options)
    {
        var parameters = model.NamedParameters().Select(p => (p.Name, Shape: p.Parameter.ShapeArray())).ToList();
        var keys = CheckpointKeyMap.Build(source.Names, parameters.Select(p => p.Name), model.BackbonePrefix);

        var problems = new List<string>();
        string? firstBad = null;
        var toInitialize = new List<string>();
        var views = new List<(string Name, TensorView View)>();
        foreach (var (name, shape) in parameters)
        {
            if (keys.ByParameter.TryGetValue(name, out string? key))
            {
                var view = source.GetTensor(key);
                if (!view.Shape.AsSpan().SequenceEqual(shape) && options.IgnoreMismatchedSizes && IsInitializable(model, name))
                {
                    toInitialize.Add(name);
                    options.Log?.Invoke($"{source.Path}: '{key}' has shape {Format(view.Shape.AsSpan())} but the model needs {Format(shape)}; re-initialised (IgnoreMismatchedSizes)");
                    continue;
                }
                if (!view.Shape.AsSpan().SequenceEqual(shape))
                    problems.Add($"tensor '{key}' has shape {Format(view.Shape.AsSpan())} in the checkpoint but the model built from config.json expects {Format(shape)}");
                else if (!CheckpointTensors.IsFloat(view.DType))
                    problems.Add($"tensor '{key}' is {view.DType.ToSafeTensorsName()}, not a float type that can hold weights");
                else
                {
                    views.Add((name, view));
                    continue;
                }
                firstBad ??= key;
            }
            else if (IsInitializable(model, name))
            {
                toInitialize.Add(name);
            }
            else
            {
                problems.Add($"missing tensor '{name}' (expected shape {Format(shape)})");
                firstBad ??= name;
            }
        }
        if (problems.Count > 0) throw Mismatch(model, source, problems, firstBad);

        int zeroCopy = 0, converted = 0;
        var float32Modules = model.Float32ModuleNames;
        foreach (var (name, view) in views)
        {
            bool keepHalf = !options.ConvertToFloat32 && view.Rank >= 2 && !IsUnder(name, float32Modules);
            var tensor = CheckpointTensors.ToEngine(view, keepHalf, source, out bool inPlace);
            if (inPlace) zeroCopy++;
            else converted += view.DType == CheckpointDType.F32 ? 0 : 1;
            var current = model.GetParameter(name);
            current.RequiresGrad = tensor.DType == DType.Float32;
            model.ReplaceParameter(name, tensor);
        }
        WeightInitializer.Initialize(model, toInitialize, WeightInitializer.InitializerRange(model.Config), new Generator(options.Seed));

        var report = new ModelLoadReport(source.Path, toInitialize, keys.Unexpected, keys.Buffers, zeroCopy, converted,
            keys.AddedPrefix ? $"added '{model.BackbonePrefix}.' to bare-backbone checkpoint keys" : null);
        Warn(options, report);
        return report;
    }

    /// <summary>Whether <paramref name="name"/> lies under one of the dotted module paths.</summary>
    internal static bool IsUnder(string name, IReadOnlyList<string> modules) =>
        modules.Any(m => name.StartsWith(m + ".", StringComparison.Ordinal));

    private static bool IsInitializable(PretrainedModel model, string name) => IsUnder(name, model.InitializableModuleNames);

    private static ModelLoadException Mismatch(PretrainedModel model, ITensorSource source, List<string> problems, string? firstBad)
    {
        var sb = new StringBuilder();
        sb.Append($"{source.Path}: the checkpoint does not fit the {model.Config.ModelType} model described by {model.Config.SourcePath ?? "config.json"}");
        sb.Append($" ({problems.Count} problem{(problems.Count == 1 ? "" : "s")}):");
        foreach (string p in problems.Take(MaxListed)) sb.Append("\n  ").Append(p);
        if (problems.Count > MaxListed) sb.Append($"\n  ... and {problems.Count - MaxListed} more");
        return new ModelLoadException(source.Path, firstBad, sb.ToString());
    }

    private static void Warn(ModelLoadOptions options, ModelLoadReport report)
    {
        if (options.Log is not { } log) return;
        if (report.InitializedParameters.Count > 0)
            log($"{report.WeightsPath}: newly initialised (not in the checkpoint): {string.Join(", ", report.InitializedParameters)}; train them before use.");
        if (report.UnexpectedKeys.Count > 0)
            log($"{report.WeightsPath}: unused checkpoint tensors: {string.Join(", ", report.UnexpectedKeys.Take(MaxListed))}{(report.UnexpectedKeys.Count > MaxListed ? ", ..." : "")}");
    }

    private static string Format(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";
}
