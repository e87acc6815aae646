using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Selective;

/// <summary>
/// PaFi (Liao et al., 2023): only the k smallest-magnitude entries of W are trained, the mask fixed before training.
/// Held as k values (init 0) at fixed (row, column) positions; ΔW is zero elsewhere, so W + ΔW differs from W only on
/// the chosen entries. Parameters: "values" [k]. Saved besides: "index" [k, 2] (row, column as float32, exact below 2²⁴).
/// </summary>
public sealed class PafiDelta : WeightDelta
{
    private readonly Tensor index;
    private readonly int[] rows;
    private readonly int[] cols;
    private readonly int outFeatures;
    private readonly int inFeatures;

    /// <summary>Chooses the <paramref name="count"/> entries of smallest |w| in <paramref name="weight"/> ([out, in]; ties by position).</summary>
    public PafiDelta(Tensor weight, int count)
    {
        ArgumentNullException.ThrowIfNull(weight);
        outFeatures = weight.Size(0);
        inFeatures = weight.Size(1);
        if (count <= 0 || count > weight.Count) throw new ArgumentOutOfRangeException(nameof(count), count, $"must be in 1..{weight.Count}");
        if (Math.Max(outFeatures, inFeatures) >= 1 << 24) throw new ArgumentException($"PaFi indices are stored as float32; a dimension of {weight} exceeds 2^24");
        float[] w;
        using (TensorScope.Untracked()) w = weight.To(DType.Float32).Contiguous().ToArray();
        var order = Enumerable.Range(0, w.Length).OrderBy(i => Math.Abs(w[i])).ThenBy(i => i).Take(count).Order().ToArray();
        rows = order.Select(i => i / inFeatures).ToArray();
        cols = order.Select(i => i % inFeatures).ToArray();
        var indexValues = new float[2 * count];
        for (int j = 0; j < count; j++)
        {
            indexValues[2 * j] = rows[j];
            indexValues[2 * j + 1] = cols[j];
        }
        using (TensorScope.Untracked())
        {
            index = Tensor.From(indexValues, count, 2);
            index.RequiresGrad = false;
            RegisterParameter("values", Tensor.Zeros(count));
        }
    }

    /// <summary>The trained values [k].</summary>
    public Tensor Values => GetParameter("values");

    /// <summary>(row, column) of each trained entry, in row-major order.</summary>
    public IReadOnlyList<(int Row, int Column)> Entries
    {
        get
        {
            SyncIndex();
            return rows.Zip(cols).ToList();
        }
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        SyncIndex();
        return SparseEntryOps.Apply(input, Values, rows, cols, outFeatures);
    }

    /// <inheritdoc/>
    public override Tensor DenseWeight()
    {
        SyncIndex();
        var dense = Tensor.Zeros(outFeatures, inFeatures);
        var d = dense.AsSpan<float>();
        var v = Values.AsSpan<float>();
        for (int j = 0; j < rows.Length; j++) d[rows[j] * inFeatures + cols[j]] += v[j];
        return dense;
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Suffix, Tensor Tensor)> SavedTensors() => [("values", Values), ("index", index)];

    /// <summary>
    /// Reads the positions from the index tensor (which loading overwrites in place), so a loaded adapter uses the
    /// saved mask even if it was chosen on other weights. O(k), no allocation.
    /// </summary>
    private void SyncIndex()
    {
        var ix = index.AsSpan<float>();
        for (int j = 0; j < rows.Length; j++)
        {
            int r = (int)ix[2 * j], c = (int)ix[2 * j + 1];
            if ((uint)r >= (uint)outFeatures || (uint)c >= (uint)inFeatures)
                throw new InvalidOperationException($"PaFi index entry {j} = ({ix[2 * j]}, {ix[2 * j + 1]}) lies outside the [{outFeatures}, {inFeatures}] weight");
            rows[j] = r;
            cols[j] = c;
        }
    }
}
