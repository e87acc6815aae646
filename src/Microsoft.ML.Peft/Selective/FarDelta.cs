using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Selective;

/// <summary>
/// Freeze-and-Reconfigure (FaR; Vucetic et al., 2022): a linear layer's output rows are split into a trainable group
/// and a frozen group; only the chosen rows of W (and of b) change. Held as ΔW_rows [k, in] and Δb_rows [k] (init 0)
/// added to the chosen outputs: y[..., rows] += x·ΔW_rowsᵀ + Δb_rows. Parameters: "weight" [k, in], "bias" [k] (when
/// the base has a bias). The chosen rows are part of the config (row_indices), so loading needs no selection data.
/// </summary>
public sealed class FarDelta : WeightDelta
{
    private readonly int[] rows;
    private readonly int outFeatures;
    private readonly Tensor scatterIndex;

    /// <summary>Trains rows <paramref name="rows"/> (distinct, ascending) of an [out, in] layer.</summary>
    public FarDelta(int outFeatures, int inFeatures, IReadOnlyList<int> rows, bool hasBias)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0 || rows.Any(r => r < 0 || r >= outFeatures) || rows.Distinct().Count() != rows.Count)
            throw new ArgumentException($"FaR rows must be distinct indices in 0..{outFeatures - 1}, got [{string.Join(", ", rows)}]", nameof(rows));
        this.rows = rows.ToArray();
        this.outFeatures = outFeatures;
        // out[..., o] = z[..., map[o]], with map[o] = k (a zero column) for frozen rows: an index-select scatters z into place
        // and its backward gathers the gradient of exactly the trained rows.
        var map = Enumerable.Repeat(rows.Count, outFeatures).ToArray();
        for (int j = 0; j < rows.Count; j++) map[rows[j]] = j;
        using (TensorScope.Untracked())
        {
            scatterIndex = Tensor.FromInt32(map, outFeatures);
            RegisterParameter("weight", Tensor.Zeros(rows.Count, inFeatures));
            if (hasBias) RegisterParameter("bias", Tensor.Zeros(rows.Count));
        }
    }

    /// <summary>The trained rows, ascending.</summary>
    public IReadOnlyList<int> Rows => rows;

    /// <summary>ΔW of the trained rows [k, in].</summary>
    public Tensor Weight => GetParameter("weight");

    /// <summary>Δb of the trained rows [k], or null.</summary>
    public Tensor? Bias => NamedParameters().Any(p => p.Name == "bias") ? GetParameter("bias") : null;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var z = input.Linear(Weight, Bias);                                     // [..., k]
        var zeroShape = z.ShapeArray();
        zeroShape[^1] = 1;
        var padded = Tensor.Concat([z, Tensor.Zeros(zeroShape)], z.Rank - 1);   // [..., k + 1]
        return padded.IndexSelect(z.Rank - 1, scatterIndex);                   // [..., out]
    }

    /// <inheritdoc/>
    public override Tensor DenseWeight()
    {
        int inFeatures = Weight.Size(1);
        var dense = Tensor.Zeros(outFeatures, inFeatures);
        var d = dense.AsSpan<float>();
        var w = Weight.AsSpan<float>();
        for (int j = 0; j < rows.Length; j++) w.Slice(j * inFeatures, inFeatures).CopyTo(d.Slice(rows[j] * inFeatures, inFeatures));
        return dense;
    }

    /// <inheritdoc/>
    public override Tensor? DenseBias()
    {
        if (Bias is not { } bias) return null;
        var dense = Tensor.Zeros(outFeatures);
        var d = dense.AsSpan<float>();
        var b = bias.AsSpan<float>();
        for (int j = 0; j < rows.Length; j++) d[rows[j]] = b[j];
        return dense;
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Suffix, Tensor Tensor)> SavedTensors() =>
        Bias is { } b ? [("weight", Weight), ("bias", b)] : [("weight", Weight)];
}
