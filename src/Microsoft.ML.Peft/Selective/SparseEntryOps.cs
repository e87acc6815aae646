using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Selective;

/// <summary>
/// y = x·ΔWᵀ for a ΔW with k non-zero entries (row r_j, column c_j, value v_j), with backward. Costs O(rows·k) instead
/// of the dense O(rows·out·in): PaFi trains a small fraction of a layer's entries, so building ΔW densely every step
/// would cost as much as the layer itself. Entries are visited in (row, column) order so each input row is read
/// forward and each output row is written in runs.
/// </summary>
internal static unsafe class SparseEntryOps
{
    /// <summary>y[..., r_j] += v_j·x[..., c_j] over all j; y is [..., <paramref name="outFeatures"/>].</summary>
    public static Tensor Apply(Tensor input, Tensor values, int[] rows, int[] cols, int outFeatures)
    {
        const string op = "sparse_entries";
        int inFeatures = input.Shape[^1];
        int k = values.Count;
        if (rows.Length != k || cols.Length != k) throw new ArgumentException($"{op}: {k} values but {rows.Length} rows and {cols.Length} columns");
        var x = input.IsContiguous ? input : input.ContiguousCopy(op);
        int n = inFeatures == 0 ? 0 : x.Count / inFeatures;
        var outShape = input.ShapeArray();
        outShape[^1] = outFeatures;
        var y = Tensor.Zeros(outShape);
        float* px = x.Ptr, py = y.Ptr, pv = values.Ptr;
        for (int i = 0; i < n; i++)
        {
            float* xr = px + (long)i * inFeatures, yr = py + (long)i * outFeatures;
            for (int j = 0; j < k; j++) yr[rows[j]] += pv[j] * xr[cols[j]];
        }
        if (Autograd.ShouldRecord(x, values))
        {
            var node = Autograd.Record(op, y, [x, values], (node, g) =>
            {
                var gc = g.IsContiguous ? g : g.ContiguousCopy();
                float* pg = gc.Ptr, pxs = x.Ptr, pvs = values.Ptr;
                if (node.NeedsGrad(0))
                {
                    var gx = Tensor.Zeros(x.ShapeArray());
                    float* pgx = gx.Ptr;
                    for (int i = 0; i < n; i++)
                    {
                        float* gr = pg + (long)i * outFeatures, gxr = pgx + (long)i * inFeatures;
                        for (int j = 0; j < k; j++) gxr[cols[j]] += pvs[j] * gr[rows[j]];
                    }
                    node.AccumulateGrad(0, gx);
                }
                if (node.NeedsGrad(1))
                {
                    var gv = Tensor.Zeros(k);
                    float* pgv = gv.Ptr;
                    for (int i = 0; i < n; i++)
                    {
                        float* gr = pg + (long)i * outFeatures, xr = pxs + (long)i * inFeatures;
                        for (int j = 0; j < k; j++) pgv[j] += gr[rows[j]] * xr[cols[j]];
                    }
                    node.AccumulateGrad(1, gv);
                }
            });
            node.SaveForBackward(x, values);
        }
        return Autograd.Checked(y, x, values);
    }
}
