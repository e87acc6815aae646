using Microsoft.ML.Peft.Adapters;
using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Selective;

/// <summary>Row / column selection for Freeze-and-Reconfigure (<see cref="FarConfig"/>).</summary>
public static class FreezeAndReconfigure
{
    /// <summary>
    /// Chooses each targeted layer's trainable rows (columns, per <see cref="FarConfig.Split"/>) by gradient magnitude —
    /// those with the largest Σ|∂L/∂W[r, :]| (Σ|∂L/∂W[:, c]|) summed over <paramref name="batches"/> calls of
    /// <paramref name="loss"/> (each returns a scalar loss of the un-adapted model) — and records them in
    /// <paramref name="config"/>.Indices, setting selection "gradient".
    /// Parameters' trainable flags and gradients are restored afterwards.
    /// </summary>
    public static void SelectByGradient(Module model, FarConfig config, Func<Tensor> loss, int batches = 1)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(loss);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batches);
        config.Validate();
        var targets = LinearTargets.Find(model, config.TargetModules, config.ExcludeModules, config.ModulesToSave, "FAR", "[\"up_proj\", \"down_proj\"] or [\"intermediate.dense\", \"output.dense\"]");
        var weights = targets.Select(t => (t.Name, Weight: t.Layer switch
        {
            Linear l => l.Weight,
            Conv1D c => c.Weight,
            var other => throw new Tuners.PeftConfigException($"'{t.Name}' is a {other.GetType().Name}; FAR needs a Linear or Conv1D weight"),
        }, Transposed: t.Layer is Conv1D)).ToList();
        var flags = model.Parameters().Select(p => (Parameter: p, p.RequiresGrad)).ToList();
        try
        {
            model.SetRequiresGrad(false);
            foreach (var (name, w, _) in weights)
            {
                if (w.DType != DType.Float32) throw new Tuners.PeftConfigException($"FAR gradient selection needs float32 weights; '{name}' is {DTypeInfo.Name(w.DType)}");
                w.ZeroGrad();
                w.RequiresGrad = true;
            }
            for (int b = 0; b < batches; b++)
            {
                using var scope = TensorScope.Begin();
                loss().Backward();
            }
            foreach (var (name, w, transposed) in weights)
            {
                using var scope = TensorScope.Begin();
                var grad = w.Grad ?? throw new InvalidOperationException($"the loss does not depend on '{name}'; no gradient reached it");
                var scores = L1Norms(transposed ? grad.Transpose(0, 1) : grad, config.Split);
                config.Indices[name] = Top(scores, config.TrainedCount(scores.Length));
            }
            config.Selection = FarSelection.Gradient;
        }
        finally
        {
            foreach (var (_, w, _) in weights) w.ZeroGrad();
            foreach (var (parameter, requiresGrad) in flags) parameter.RequiresGrad = requiresGrad;
        }
    }

    /// <summary>‖M[r, :]‖₁ for each row (or ‖M[:, c]‖₁ for each column) of an [out, in] matrix, in double.</summary>
    internal static double[] L1Norms(Tensor matrix, FarSplit split)
    {
        int rows = matrix.Size(0), cols = matrix.Size(1);
        float[] values;
        using (TensorScope.Untracked()) values = matrix.To(DType.Float32).Contiguous().ToArray();
        var norms = new double[split == FarSplit.Rows ? rows : cols];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++) norms[split == FarSplit.Rows ? r : c] += Math.Abs(values[r * cols + c]);
        }
        return norms;
    }

    /// <summary>The <paramref name="count"/> indices of largest score (ties by index), ascending.</summary>
    internal static IReadOnlyList<int> Top(double[] scores, int count) =>
        Enumerable.Range(0, scores.Length).OrderByDescending(r => scores[r]).ThenBy(r => r).Take(count).Order().ToList();
}
