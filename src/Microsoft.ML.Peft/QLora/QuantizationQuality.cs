using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Quantization;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.QLora;

/// <summary>
/// What storing the base weights in fewer bits costs a language model: puts a model's linear layers into a
/// <see cref="BaseWeightFormat"/> and measures perplexity on held-out token sequences.
/// </summary>
public static class QuantizationQuality
{
    /// <summary>
    /// Converts every float32 <see cref="Linear"/> of <paramref name="model"/> except the output heads
    /// (<see cref="QuantizationOptions.DefaultExcludedNames"/>) to <paramref name="format"/>, in place.
    /// </summary>
    /// <param name="model">The model (float32 linear layers).</param>
    /// <param name="format">The storage to simulate or use.</param>
    /// <param name="blockSize">Block size of the 4-bit formats.</param>
    /// <param name="doubleQuant">Double-quantize the 4-bit formats' scales.</param>
    /// <returns>The dotted names of the converted layers.</returns>
    public static IReadOnlyList<string> ApplyBaseWeightFormat(Module model, BaseWeightFormat format,
        int blockSize = QuantizedTensor4Bit.DefaultBlockSize, bool doubleQuant = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        switch (format)
        {
            case BaseWeightFormat.Float32:
                return [];
            case BaseWeightFormat.NF4 or BaseWeightFormat.FP4 or BaseWeightFormat.Int4:
                var type = format switch { BaseWeightFormat.NF4 => FourBitType.NF4, BaseWeightFormat.FP4 => FourBitType.FP4, _ => FourBitType.Int4 };
                return QuantizedModel.QuantizeLinearLayers(model, new QuantizationOptions { Type = type, BlockSize = blockSize, DoubleQuant = doubleQuant });
            case BaseWeightFormat.Int8:
                return RoundToInt8(model);
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown base weight format.");
        }
    }

    /// <summary>
    /// Token-level perplexity exp(Σ −log p(token | prefix) / N) over <paramref name="sequences"/>, each scored on its
    /// own (every token after the first is predicted; include BOS yourself). Log-softmax and the sum run in double
    /// from the model's float32 logits, so the figure does not depend on the engine's loss kernel.
    /// </summary>
    /// <exception cref="ArgumentException">No sequence has two tokens, or a token id is outside the vocabulary.</exception>
    public static double Perplexity(CausalLanguageModel model, IReadOnlyList<IReadOnlyList<int>> sequences)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sequences);
        double nll = 0;
        long tokens = 0;
        int vocab = model.VocabSize;
        for (int s = 0; s < sequences.Count; s++)
        {
            var ids = sequences[s];
            if (ids.Count < 2) continue;
            for (int i = 0; i < ids.Count; i++)
            {
                if ((uint)ids[i] >= (uint)vocab)
                    throw new ArgumentException($"sequence {s}, position {i}: token id {ids[i]} is outside the vocabulary of {vocab}.", nameof(sequences));
            }
            float[] logits;
            using (Autograd.NoGrad())
            using (TensorScope.Begin())
                logits = model.Forward(Tensor.FromInt32([.. ids], 1, ids.Count)).ToArray();
            for (int t = 0; t + 1 < ids.Count; t++)
            {
                nll -= LogSoftmaxAt(logits.AsSpan(t * vocab, vocab), ids[t + 1]);
                tokens++;
            }
        }
        if (tokens == 0) throw new ArgumentException("No sequence has two or more tokens to score.", nameof(sequences));
        return Math.Exp(nll / tokens);
    }

    /// <summary>log softmax(row)[index] in double, max-shifted.</summary>
    private static double LogSoftmaxAt(ReadOnlySpan<float> row, int index)
    {
        double max = double.NegativeInfinity;
        foreach (float v in row) max = Math.Max(max, v);
        double sum = 0;
        foreach (float v in row) sum += Math.Exp(v - max);
        return row[index] - max - Math.Log(sum);
    }

    private static List<string> RoundToInt8(Module model)
    {
        var excluded = QuantizationOptions.DefaultExcludedNames;
        var targets = model.NamedModules()
            .Where(m => m.Module is Linear && m.Name.Length > 0 && !excluded.Any(e => m.Name == e || m.Name.EndsWith("." + e, StringComparison.Ordinal)))
            .Select(m => (m.Name, Layer: (Linear)m.Module))
            .ToList();
        foreach (var (name, layer) in targets)
        {
            var w = layer.Weight;
            var q = Int8RowwiseMatrix.Quantize(w.ToArray(), w.Size(0), w.Size(1));
            Tensor rounded;
            using (TensorScope.Untracked()) rounded = Tensor.From(q.Dequantize(), w.Size(0), w.Size(1));
            rounded.RequiresGrad = false;
            w.RequiresGrad = false;
            layer.ReplaceParameter("weight", rounded);
        }
        return targets.Select(t => t.Name).ToList();
    }
}
