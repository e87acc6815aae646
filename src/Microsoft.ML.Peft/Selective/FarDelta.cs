using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Selective;

/// <summary>
/// Freeze-and-Reconfigure (FaR; Vucetic et al., 2022): a linear layer is split into a trainable and a frozen group of
/// output rows (neurons) or input columns; only the chosen group's weights change.
/// Rows: ΔW_rows [k, in] and Δb_rows [k] (init 0) added to the chosen outputs, y[..., rows] += x·ΔW_rowsᵀ + Δb_rows.
/// Columns: ΔW_cols [out, k] (init 0) reading the chosen inputs, y += x[..., cols]·ΔW_colsᵀ (the bias is not split).
/// Parameters: "weight", and "bias" [k] for a row split of a layer with a bias. The chosen indices are part of the
/// config (indices), so loading needs no selection data.
/// </summary>
public sealed class FarDelta : WeightDelta
{
    private readonly int[] indices;
    private readonly int outFeatures;
    private readonly int inFeatures;
    private readonly Tensor selectIndex;

    /// <summary>Trains <paramref name="indices"/> (distinct) of the rows or columns (<paramref name="split"/>) of an [out, in] layer.</summary>
    public FarDelta(int outFeatures, int inFeatures, IReadOnlyList<int> indices, FarSplit split, bool hasBias)
    {
        ArgumentNullException.ThrowIfNull(indices);
        int limit = split == FarSplit.Rows ? outFeatures : inFeatures;
        if (indices.Count == 0 || indices.Any(r => r < 0 || r >= limit) || indices.Distinct().Count() != indices.Count)
            throw new ArgumentException($"FaR {(split == FarSplit.Rows ? "rows" : "columns")} must be distinct indices in 0..{limit - 1}, got [{string.Join(", ", indices)}]", nameof(indices));
        this.indices = indices.ToArray();
        this.outFeatures = outFeatures;
        this.inFeatures = inFeatures;
        Split = split;
        using (TensorScope.Untracked())
        {
            if (split == FarSplit.Rows)
            {
                // out[..., o] = z[..., map[o]], with map[o] = k (a zero column) for frozen rows: an index-select scatters z
                // into place and its backward gathers the gradient of exactly the trained rows.
                var map = Enumerable.Repeat(indices.Count, outFeatures).ToArray();
                for (int j = 0; j < indices.Count; j++) map[indices[j]] = j;
                selectIndex = Tensor.FromInt32(map, outFeatures);
                RegisterParameter("weight", Tensor.Zeros(indices.Count, inFeatures));
                if (hasBias) RegisterParameter("bias", Tensor.Zeros(indices.Count));
            }
            else
            {
                selectIndex = Tensor.FromInt32(this.indices, indices.Count);
                RegisterParameter("weight", Tensor.Zeros(outFeatures, indices.Count));
            }
        }
    }

    /// <summary>Whether rows (outputs) or columns (inputs) are split.</summary>
    public FarSplit Split { get; }

    /// <summary>The trained rows or columns.</summary>
    public IReadOnlyList<int> Indices => indices;

    /// <summary>ΔW of the trained group: [k, in] for rows, [out, k] for columns.</summary>
    public Tensor Weight => GetParameter("weight");

    /// <summary>Δb of the trained rows [k], or null.</summary>
    public Tensor? Bias => NamedParameters().Any(p => p.Name == "bias") ? GetParameter("bias") : null;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        int last = input.Rank - 1;
        if (Split == FarSplit.Columns) return input.IndexSelect(last, selectIndex).Linear(Weight);   // [..., k] → [..., out]
        var z = input.Linear(Weight, Bias);                                                         // [..., k]
        var zeroShape = z.ShapeArray();
        zeroShape[^1] = 1;
        return Tensor.Concat([z, Tensor.Zeros(zeroShape)], last).IndexSelect(last, selectIndex);   // [..., out]
    }

    /// <inheritdoc/>
    public override Tensor DenseWeight()
    {
        var dense = Tensor.Zeros(outFeatures, inFeatures);
        var d = dense.AsSpan<float>();
        var w = Weight.AsSpan<float>();
        int k = indices.Length;
        for (int j = 0; j < k; j++)
        {
            if (Split == FarSplit.Rows) w.Slice(j * inFeatures, inFeatures).CopyTo(d.Slice(indices[j] * inFeatures, inFeatures));
            else for (int o = 0; o < outFeatures; o++) d[o * inFeatures + indices[j]] = w[o * k + j];
        }
        return dense;
    }

    /// <inheritdoc/>
    public override Tensor? DenseBias()
    {
        if (Bias is not { } bias) return null;
        var dense = Tensor.Zeros(outFeatures);
        var d = dense.AsSpan<float>();
        var b = bias.AsSpan<float>();
        for (int j = 0; j < indices.Length; j++) d[indices[j]] = b[j];
        return dense;
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Suffix, Tensor Tensor)> SavedTensors() =>
        Bias is { } b ? [("weight", Weight), ("bias", b)] : [("weight", Weight)];
}
