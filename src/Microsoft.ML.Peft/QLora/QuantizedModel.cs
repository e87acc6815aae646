using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.QLora;

/// <summary>
/// Whole-model QLoRA conversions: quantize every <see cref="Linear"/> of a module tree to 4 bits in place, turn the
/// 4-bit layers back into float32 ones (before merging adapters), and measure what a conversion does to the logits.
/// </summary>
public static partial class QuantizedModel
{
    /// <summary>
    /// Replaces every float32 <see cref="Linear"/> in <paramref name="model"/> by a <see cref="QuantizedLinear"/>,
    /// except the layers named in <see cref="QuantizationOptions.ExcludedNames"/> (the output head); optionally
    /// converts <see cref="Embedding"/> tables to frozen bfloat16. A <see cref="Linear"/> inside another
    /// <see cref="LinearLayer"/> (an adapter's base layer or its A/B matrices) belongs to that wrapper and is left
    /// alone: quantize before adding adapters, or unwrap merged adapters first.
    /// </summary>
    /// <returns>The dotted names of the layers that were quantized, in module order.</returns>
    /// <exception cref="ArgumentException">A target's weight is not float32 (nothing has been changed yet).</exception>
    public static IReadOnlyList<string> QuantizeLinearLayers(Module model, QuantizationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new QuantizationOptions();
        var modules = model.NamedModules().Where(m => m.Name.Length > 0).ToList();
        var wrappers = modules.Where(m => m.Module is LinearLayer).Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
        var targets = modules
            .Where(m => m.Module is Linear && !IsExcluded(m.Name, options.ExcludedNames) && !InsideWrapper(m.Name, wrappers))
            .Select(m => (m.Name, Layer: (Linear)m.Module))
            .ToList();
        foreach (var (name, layer) in targets)
        {
            if (layer.Weight.DType != DType.Float32)
                throw new ArgumentException($"QuantizeLinearLayers: '{name}.weight' is {DTypeInfo.Name(layer.Weight.DType)}; 4-bit quantization starts from float32 weights.", nameof(model));
        }
        var done = new List<string>(targets.Count);
        foreach (var (name, layer) in targets)
        {
            model.ReplaceModule(name, QuantizedLinear.FromLinear(layer, options));
            done.Add(name);
        }
        if (options.EmbeddingsToBFloat16) ConvertEmbeddings(model);
        return done;
    }

    /// <summary>
    /// Replaces every <see cref="QuantizedLinear"/> by a float32 <see cref="Linear"/> holding its dequantized weight
    /// (the first step of merging trained adapters into the base model).
    /// </summary>
    /// <returns>The dotted names of the layers that were dequantized.</returns>
    public static IReadOnlyList<string> DequantizeLinearLayers(Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var targets = model.NamedModules()
            .Where(m => m.Module is QuantizedLinear && m.Name.Length > 0)
            .Select(m => (m.Name, Layer: (QuantizedLinear)m.Module))
            .ToList();
        foreach (var (name, layer) in targets) model.ReplaceModule(name, layer.Dequantize());
        return targets.Select(t => t.Name).ToList();
    }

    /// <summary>
    /// Runs <paramref name="forward"/> (which returns logits for a fixed batch) before and after
    /// <paramref name="change"/> (e.g. merging adapters and re-quantizing) and returns the largest absolute difference
    /// of any logit. Both passes run without gradient recording.
    /// </summary>
    /// <exception cref="InvalidOperationException">The two passes return logits of different shapes.</exception>
    public static float MaxLogitChange(Func<Tensor> forward, Action change)
    {
        ArgumentNullException.ThrowIfNull(forward);
        ArgumentNullException.ThrowIfNull(change);
        float[] before;
        int[] shapeBefore;
        using (Autograd.NoGrad())
        using (TensorScope.Begin())
        {
            var logits = forward();
            before = logits.ToArray();
            shapeBefore = logits.ShapeArray();
        }
        change();
        using (Autograd.NoGrad())
        using (TensorScope.Begin())
        {
            var logits = forward();
            if (!logits.Shape.SequenceEqual(shapeBefore))
                throw new InvalidOperationException($"MaxLogitChange: logits were [{string.Join(", ", shapeBefore)}] before the change and [{string.Join(", ", logits.ShapeArray())}] after.");
            var after = logits.ToArray();
            float max = 0f;
            for (int i = 0; i < after.Length; i++) max = MathF.Max(max, MathF.Abs(after[i] - before[i]));
            return max;
        }
    }

    /// <summary>Whether a proper ancestor of <paramref name="name"/> is itself a linear layer (a wrapper).</summary>
    private static bool InsideWrapper(string name, HashSet<string> linearLayers)
    {
        for (int dot = name.LastIndexOf('.'); dot > 0; dot = name.LastIndexOf('.', dot - 1))
        {
            if (linearLayers.Contains(name[..dot])) return true;
        }
        return false;
    }

    private static bool IsExcluded(string name, IReadOnlyList<string> excluded)
    {
        foreach (var e in excluded)
        {
            if (name == e || name.EndsWith("." + e, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    private static void ConvertEmbeddings(Module model)
    {
        var embeddings = model.NamedModules().Where(m => m.Module is Embedding && m.Name.Length > 0).ToList();
        foreach (var (name, module) in embeddings)
        {
            var weight = ((Embedding)module).Weight;
            if (weight.DType != DType.Float32) continue;
            Tensor bf16;
            using (TensorScope.Untracked()) bf16 = weight.To(DType.BFloat16);
            weight.RequiresGrad = false;
            model.ReplaceParameter(name + ".weight", bf16);
        }
    }
}
