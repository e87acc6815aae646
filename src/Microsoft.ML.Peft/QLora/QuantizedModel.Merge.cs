using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.QLora;

public static partial class QuantizedModel
{
    /// <summary>
    /// Merges trained adapters into a 4-bit model: every <see cref="QuantizedLinear"/> (also inside adapter wrappers)
    /// becomes a float32 <see cref="Linear"/> with its dequantized weight, every adapter layer
    /// (<see cref="ITunerLayer"/>: LoRA, IA³) folds its active adapters into that weight and is replaced by its base;
    /// with <paramref name="requantize"/>, the layers that were 4-bit are quantized again with the settings each had
    /// (code book, block size, double quantization). <paramref name="forward"/> (logits of a fixed batch) runs before,
    /// after merging and after re-quantizing, without gradients, so the report says what each stage moved.
    /// </summary>
    /// <param name="model">The module tree, changed in place and left in evaluation mode.</param>
    /// <param name="forward">Computes logits of a fixed batch with <paramref name="model"/> (e.g. <c>() => model.Forward(ids)</c>).</param>
    /// <param name="requantize">Quantize the merged layers again (default) or leave them float32.</param>
    /// <exception cref="InvalidOperationException">Nothing to merge (no adapter layer), or the logits change shape.</exception>
    public static MergeReport MergeAndRequantize(Module model, Func<Tensor> forward, bool requantize = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(forward);
        var tuners = model.NamedModules().Where(m => m.Module is ITunerLayer && m.Name.Length > 0).ToList();
        if (tuners.Count == 0)
            throw new InvalidOperationException("MergeAndRequantize: the model has no adapter layers to merge.");

        // Where each 4-bit layer will sit once its wrapper is gone, and how it was quantized.
        var unwrapped = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, module) in tuners)
        {
            var inner = ((ITunerLayer)module).BaseLayer;
            unwrapped[name + "." + module.NamedModules().First(m => ReferenceEquals(m.Module, inner)).Name] = name;
        }
        var settings = model.NamedModules()
            .Where(m => m.Module is QuantizedLinear && m.Name.Length > 0)
            .Select(m => (Path: unwrapped.GetValueOrDefault(m.Name, m.Name), Options: OptionsOf((QuantizedLinear)m.Module)))
            .ToList();

        model.Eval(); // dropout off: the three passes must see the same function of the batch
        float[] before = Logits(forward, null);
        var dequantized = DequantizeLinearLayers(model);
        var merged = new List<string>(tuners.Count);
        // Innermost first, so a wrapper's base is already plain when the wrapper merges.
        foreach (var (name, module) in tuners.OrderByDescending(t => t.Name.Length))
        {
            var tuner = (ITunerLayer)module;
            tuner.Merge();
            model.ReplaceModule(name, tuner.BaseLayer);
            merged.Add(name);
        }
        float[] afterMerge = Logits(forward, before);

        var requantized = new List<string>();
        if (requantize)
        {
            foreach (var (path, options) in settings)
            {
                if (model.GetModule(path) is not Linear linear) continue;
                model.ReplaceModule(path, QuantizedLinear.FromLinear(linear, options));
                requantized.Add(path);
            }
        }
        float[] after = requantize ? Logits(forward, before) : afterMerge;
        return new MergeReport(merged, dequantized, requantized,
            MaxAbsDifference(before, afterMerge), MaxAbsDifference(afterMerge, after), MaxAbsDifference(before, after));
    }

    private static QuantizationOptions OptionsOf(QuantizedLinear layer) => new()
    {
        Type = layer.Weight.QuantType,
        BlockSize = layer.Weight.BlockSize,
        DoubleQuant = layer.Weight.IsDoubleQuantized,
        BiasInBFloat16 = layer.Bias?.DType == DType.BFloat16,
    };

    private static float[] Logits(Func<Tensor> forward, float[]? shapeOf)
    {
        using (Autograd.NoGrad())
        using (TensorScope.Begin())
        {
            var logits = forward().ToArray();
            if (shapeOf is not null && logits.Length != shapeOf.Length)
                throw new InvalidOperationException($"MergeAndRequantize: the batch gave {shapeOf.Length} logits before merging and {logits.Length} after.");
            return logits;
        }
    }

    private static float MaxAbsDifference(float[] a, float[] b)
    {
        float max = 0f;
        for (int i = 0; i < a.Length; i++) max = MathF.Max(max, MathF.Abs(a[i] - b[i]));
        return max;
    }
}
