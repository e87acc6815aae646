using Microsoft.ML.Peft.Kernels;
using Microsoft.ML.Peft.LinearAlgebra;

namespace Microsoft.ML.Peft.GaLore;

/// <summary>
/// The subspace a GaLore gradient lives in for one m×n weight: galore_torch's "std" projector. The short side is the
/// one compressed, so the optimizer state is r×(long side):
/// <list type="bullet">
/// <item>m ≥ n: P = Vᵀ[:r] (r×n, top right singular vectors); R = G·Pᵀ (m×r); back-projection α·R·P.</item>
/// <item>m &lt; n: P = U[:, :r] (m×r, top left singular vectors); R = Pᵀ·G (r×n); back-projection α·P·R.</item>
/// </list>
/// When r ≥ min(m, n) the subspace is the whole space and the projector is the identity (nothing to compress;
/// GaLore then is exactly AdamW with the update scaled by α). Each singular vector is defined up to a sign, and the
/// sign matters once the moments outlive a refresh (they are not rotated), so every basis vector is normalised to
/// have its largest-magnitude entry positive: runs then do not depend on the SVD algorithm's sign choices.
/// </summary>
public sealed class GaLoreProjector
{
    private readonly float[]? basis;

    private GaLoreProjector(int rows, int columns, int rank, float[]? basis)
    {
        Rows = rows;
        Columns = columns;
        Rank = rank;
        this.basis = basis;
    }

    /// <summary>m, rows of the weight.</summary>
    public int Rows { get; }

    /// <summary>n, columns of the weight.</summary>
    public int Columns { get; }

    /// <summary>r, or min(m, n) for the identity projector.</summary>
    public int Rank { get; }

    /// <summary>True when the projector is the identity (r ≥ min(m, n)).</summary>
    public bool IsIdentity => basis is null;

    /// <summary>True when the right singular vectors are used (m ≥ n); the projected gradient is then m×r.</summary>
    public bool ProjectsColumns => Rows >= Columns;

    /// <summary>Element count of the projected gradient (and of each Adam moment).</summary>
    public int ProjectedCount => IsIdentity ? Rows * Columns : ProjectsColumns ? Rows * Rank : Rank * Columns;

    /// <summary>The projector of the top <paramref name="rank"/> singular vectors of <paramref name="gradient"/> (row-major m×n).</summary>
    public static GaLoreProjector FromGradient(ReadOnlySpan<float> gradient, int rows, int columns, int rank, GaLoreSvd svd, long seed, string name)
    {
        if (rank >= Math.Min(rows, columns)) return new GaLoreProjector(rows, columns, Math.Min(rows, columns), null);
        SingularValueDecomposition factors = svd == GaLoreSvd.Exact
            ? SingularValueDecomposition.ComputeThin(gradient, rows, columns, name).Truncate(rank)
            : RandomizedSvd.Compute(gradient, rows, columns, rank, seed: seed, matrixName: name);
        var basis = new float[rows >= columns ? rank * columns : rows * rank];
        if (rows >= columns)
        {
            ReadOnlySpan<double> vt = factors.Vt;          // k×n, rows are right singular vectors
            for (int i = 0; i < basis.Length; i++) basis[i] = (float)vt[i];
        }
        else
        {
            ReadOnlySpan<double> u = factors.U;             // m×k
            int k = factors.Rank;
            for (int i = 0; i < rows; i++)
            {
                for (int j = 0; j < rank; j++) basis[i * rank + j] = (float)u[i * k + j];
            }
        }
        FixSigns(basis, rows >= columns ? rank : rows, rows >= columns ? columns : rank, vectorsAreRows: rows >= columns);
        return new GaLoreProjector(rows, columns, rank, basis);
    }

    /// <summary>Flips each basis vector (a row or a column of the row-major r×c <paramref name="basis"/>) so its largest-magnitude entry is positive.</summary>
    private static void FixSigns(float[] basis, int r, int c, bool vectorsAreRows)
    {
        int vectors = vectorsAreRows ? r : c, length = vectorsAreRows ? c : r;
        for (int v = 0; v < vectors; v++)
        {
            int Index(int i) => vectorsAreRows ? v * c + i : i * c + v;
            int best = 0;
            for (int i = 1; i < length; i++)
            {
                if (Math.Abs(basis[Index(i)]) > Math.Abs(basis[Index(best)])) best = i;
            }
            if (basis[Index(best)] >= 0) continue;
            for (int i = 0; i < length; i++) basis[Index(i)] = -basis[Index(i)];
        }
    }

    /// <summary>R = G·Pᵀ (m ≥ n) or Pᵀ·G (m &lt; n); a copy of G for the identity projector.</summary>
    public void Project(ReadOnlySpan<float> gradient, Span<float> projected)
    {
        if (basis is null)
        {
            gradient.CopyTo(projected);
        }
        else if (ProjectsColumns)
        {
            Gemm.Sgemm(false, true, Rows, Rank, Columns, 1f, gradient, Columns, basis, Columns, 0f, projected, Rank);
        }
        else
        {
            Gemm.Sgemm(true, false, Rank, Columns, Rows, 1f, basis, Rank, gradient, Columns, 0f, projected, Columns);
        }
    }

    /// <summary>full += α·R·P (m ≥ n) or α·P·R (m &lt; n); full += α·R for the identity projector.</summary>
    public void AddProjectedBack(ReadOnlySpan<float> projected, float scale, Span<float> full)
    {
        if (basis is null)
        {
            for (int i = 0; i < full.Length; i++) full[i] += scale * projected[i];
        }
        else if (ProjectsColumns)
        {
            Gemm.Sgemm(false, false, Rows, Columns, Rank, scale, projected, Rank, basis, Columns, 1f, full, Columns);
        }
        else
        {
            Gemm.Sgemm(false, false, Rows, Columns, Rank, scale, basis, Rank, projected, Columns, 1f, full, Columns);
        }
    }
}
