using System.Runtime.InteropServices;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Quantization;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.QLora;

/// <summary>
/// The base-model state dict of a (partly) 4-bit model, as transformers saves a bitsandbytes-quantized model: every
/// ordinary parameter under its own name and dtype, and for every <see cref="QuantizedLinear"/> the bitsandbytes
/// arrays <c>X.weight</c> (packed U8), <c>X.weight.absmax</c>, <c>X.weight.quant_map</c>, <c>X.weight.nested_absmax</c>,
/// <c>X.weight.nested_quant_map</c> and <c>X.weight.quant_state.bitsandbytes__nf4</c> (see
/// <see cref="BitsAndBytes4BitStateDict"/>).
/// </summary>
/// <remarks>
/// Adapter layers (<see cref="ITunerLayer"/>, e.g. LoRA wrappers) contribute their base layer only, under the name
/// the base had before it was wrapped (PEFT's <c>get_base_model().state_dict()</c> without <c>base_layer</c>): the
/// frozen base is saved once and adapters separately in PEFT format.
/// </remarks>
internal static class QuantizedStateDict
{
    /// <summary>Adds every base-model tensor of <paramref name="model"/> to <paramref name="writer"/>.</summary>
    /// <returns>The names (without ".weight") of the 4-bit layers written.</returns>
    public static IReadOnlyList<string> AddTo(SafeTensorsWriter writer, Module model)
    {
        var tuners = model.NamedModules().Where(m => m.Module is ITunerLayer && m.Name.Length > 0).ToList();
        // Wrapper path → the path of its base layer inside it (e.g. "q_proj" → "q_proj.base_layer").
        var baseOf = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, module) in tuners)
        {
            var inner = ((ITunerLayer)module).BaseLayer;
            var basePath = module.NamedModules().First(m => ReferenceEquals(m.Module, inner)).Name;
            baseOf[name] = name + "." + basePath;
        }

        var quantized = new List<string>();
        foreach (var (name, module) in model.NamedModules())
        {
            if (module is not QuantizedLinear q || SavedName(name, baseOf) is not { } saved) continue;
            foreach (var array in BitsAndBytes4BitStateDict.ToArrays(q.Weight, saved + ".weight"))
                writer.Add(array.Name, ToCheckpointDType(array.DType), ToIntShape(array.Shape), array.Data.ToArray());
            quantized.Add(saved);
        }
        foreach (var (name, parameter) in model.NamedParameters())
        {
            if (SavedName(name, baseOf) is { } saved) AddTensor(writer, saved, parameter);
        }
        return quantized;
    }

    /// <summary>
    /// The name a module or parameter path has in the base model: unchanged outside adapter layers,
    /// "q_proj.base_layer.bias" → "q_proj.bias" inside one, null for the adapter's own tensors.
    /// </summary>
    private static string? SavedName(string path, Dictionary<string, string> baseOf)
    {
        // Innermost wrapper first: a path is inside wrapper W when it starts with "W.".
        foreach (var (wrapper, basePath) in baseOf.OrderByDescending(p => p.Key.Length))
        {
            if (!path.StartsWith(wrapper + ".", StringComparison.Ordinal)) continue;
            if (path == basePath) return SavedName(wrapper, baseOf) ?? wrapper;
            if (!path.StartsWith(basePath + ".", StringComparison.Ordinal)) return null;
            return SavedName(wrapper + path[basePath.Length..], baseOf);
        }
        return path;
    }

    private static void AddTensor(SafeTensorsWriter writer, string name, Tensor tensor)
    {
        var t = tensor.IsContiguous ? tensor : tensor.Contiguous();
        byte[] bytes = t.DType switch
        {
            DType.Float32 => MemoryMarshal.AsBytes(t.AsReadOnlySpan<float>()).ToArray(),
            DType.BFloat16 or DType.Float16 => MemoryMarshal.AsBytes(t.AsReadOnlySpan<ushort>()).ToArray(),
            _ => throw new ArgumentException($"Parameter '{name}' is {DTypeInfo.Name(t.DType)}; only float32, bfloat16 and float16 parameters can be saved.", nameof(tensor)),
        };
        var dtype = t.DType switch
        {
            DType.Float32 => CheckpointDType.F32,
            DType.BFloat16 => CheckpointDType.BF16,
            _ => CheckpointDType.F16,
        };
        writer.Add(name, dtype, t.ShapeArray(), bytes);
    }

    private static CheckpointDType ToCheckpointDType(QuantizedArrayDType dtype) =>
        dtype == QuantizedArrayDType.UInt8 ? CheckpointDType.U8 : CheckpointDType.F32;

    private static int[] ToIntShape(long[] shape) => [.. shape.Select(d => checked((int)d))];
}
