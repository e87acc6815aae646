using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Reft;

/// <summary>
/// LoReFT's projection R ∈ ℝ^{r×d} with orthonormal rows, kept orthonormal by construction: R is a product of r
/// Householder reflections (LAPACK's compact form, the map <c>torch.linalg.householder_product</c> computes and
/// <c>torch.nn.utils.parametrizations.orthogonal</c> uses for non-square matrices), so every optimizer step on the
/// free parameter stays exactly on the Stiefel manifold — no retraction, no drift, gradients by ordinary autograd.
/// </summary>
/// <remarks>
/// <para>Parameter <c>householder</c> V [r, d]. Reflection i uses u_i = e_i + Σ_{j&gt;i} V[i, j]·e_j (unit i-th entry,
/// entries before i unused), H_i = I − τ_i·u_i·u_iᵀ with τ_i = 2/‖u_i‖², and R = (H_0·H_1⋯H_{r−1}·I_{d×r})ᵀ. The unit
/// entry keeps ‖u_i‖ ≥ 1, so the map is smooth everywhere and weight decay on V cannot shrink a reflection to zero.
/// Entries V[i, j ≤ i] do not change R (their gradient is zero); they are kept so V is a plain [r, d] matrix, and
/// the parameter count matches pyreft's d·r.</para>
/// <para>Products of r reflections reach every d×r matrix with orthonormal columns up to the signs of its columns
/// (Householder QR); a sign flip of a row of R is absorbed by the same flip of W's row and b's entry in LoReFT's
/// Rᵀ(Wh + b − Rh), so the family of interventions is exactly pyreft's.</para>
/// <para>Cost: r rank-one updates of an r×d matrix per forward (O(r²d)), negligible next to one block.</para>
/// </remarks>
public sealed class HouseholderRotation : Module
{
    private readonly Parameter householder;
    private readonly Tensor lowerMask;
    private readonly Tensor identityRows;

    /// <summary>A random rotation for rank <paramref name="rank"/> in <paramref name="hidden"/> dimensions: V ~ N(0, 1).</summary>
    public HouseholderRotation(int rank, int hidden, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rank);
        if (rank > hidden) throw new ArgumentOutOfRangeException(nameof(rank), $"low_rank_dimension {rank} exceeds the hidden size {hidden}: R cannot have more orthonormal rows than dimensions");
        Tensor v;
        var mask = new float[rank * hidden];
        var eye = new float[rank * hidden];
        for (int i = 0; i < rank; i++)
        {
            eye[i * hidden + i] = 1f;
            for (int j = i + 1; j < hidden; j++) mask[i * hidden + j] = 1f;
        }
        using (TensorScope.Untracked())
        {
            v = Tensor.Randn(generator, rank, hidden);
            lowerMask = Tensor.From(mask, rank, hidden);
            identityRows = Tensor.From(eye, rank, hidden);
        }
        householder = RegisterParameter("householder", v);
    }

    /// <summary>The free parameter V [r, d].</summary>
    public Tensor Householder => householder.Value;

    /// <summary>r, the number of orthonormal rows.</summary>
    public int Rank => identityRows.Size(0);

    /// <summary>d, the width of the hidden states.</summary>
    public int Hidden => identityRows.Size(1);

    /// <summary>R [r, d] with orthonormal rows (recorded for autograd when V requires gradients).</summary>
    public Tensor Weight()
    {
        // Rows u_i: the unit entry at i plus V's entries after i.
        var u = householder.Value.Mul(lowerMask).Add(identityRows);
        // R = I_{r×d}·H_{r−1}⋯H_0, applied left to right: X·H = X − τ·(X·u)·uᵀ.
        var r = identityRows;
        for (int i = Rank - 1; i >= 0; i--)
        {
            var ui = u.Narrow(0, i, 1);                       // [1, d]
            var tau = Tensor.Scalar(2f).Div(ui.Mul(ui).Sum()); // 2 / ‖u_i‖²
            r = r.Sub(r.MatMul(ui.Transpose(0, 1)).MatMul(ui).Mul(tau));
        }
        return r;
    }
}
