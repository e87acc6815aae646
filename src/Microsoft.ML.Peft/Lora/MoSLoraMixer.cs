using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Lora;

/// <summary>How MoSLoRA's r×r mixer starts (the <c>lora_use_mixer</c> / <c>lora_mixer_init</c> config keys).</summary>
public enum MoSLoraMixerInit
{
    /// <summary>
    /// nn.Linear's default, Kaiming-uniform with a = √5, i.e. U(−1/√r, 1/√r): what the MoSLoRA authors' code does
    /// (the mixer is an <c>nn.Linear(r, r, bias=False)</c> left at its default init), and the paper's better choice.
    /// </summary>
    KaimingUniform,

    /// <summary>A random orthogonal matrix (torch.nn.init.orthogonal_: Q of the QR of a Gaussian matrix, diag(R) &gt; 0).</summary>
    Orthogonal,
}

/// <summary>
/// MoSLoRA (Wu et al. 2024, "Mixture-of-Subspaces in Low-Rank Adaptation"): a trainable r×r mixer M between A and
/// B, so the update is scaling·B·M·A. It fuses the r rank-one subspaces of A and B with r² extra parameters per layer.
/// B still starts at zero, so the adapter is the identity at init whatever M is.
/// </summary>
internal static class MoSLoraMixer
{
    /// <summary>A bias-free r×r linear layer (PEFT-style name "lora_AB.&lt;adapter&gt;.weight") initialised as asked.</summary>
    public static Linear Create(int rank, MoSLoraMixerInit init, Generator generator)
    {
        Linear mixer;
        using (TensorScope.Untracked()) mixer = new Linear(rank, rank, generator, hasBias: false);
        if (init == MoSLoraMixerInit.Orthogonal)
        {
            using (Autograd.NoGrad()) Orthogonalize(mixer.Weight, generator);
        }
        return mixer;
    }

    /// <summary>
    /// Fills the square <paramref name="weight"/> with Q from the QR factorisation of a standard-normal matrix
    /// (modified Gram–Schmidt in double on the columns, which yields the Q whose R has a positive diagonal, the
    /// same matrix torch's orthogonal_ returns after its sign correction).
    /// </summary>
    internal static void Orthogonalize(Tensor weight, Generator generator)
    {
        int n = weight.Size(0);
        var gaussian = Tensor.Randn(generator, n, n).ToArray();
        var q = new double[n, n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++) q[i, j] = gaussian[i * n + j];
        }
        for (int j = 0; j < n; j++)
        {
            for (int k = 0; k < j; k++)
            {
                double dot = 0;
                for (int i = 0; i < n; i++) dot += q[i, k] * q[i, j];
                for (int i = 0; i < n; i++) q[i, j] -= dot * q[i, k];
            }
            double norm = 0;
            for (int i = 0; i < n; i++) norm += q[i, j] * q[i, j];
            norm = Math.Sqrt(norm);
            for (int i = 0; i < n; i++) q[i, j] /= norm;
        }
        var values = new float[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++) values[i * n + j] = (float)q[i, j];
        }
        weight.CopyFrom_(Tensor.From(values, n, n));
    }
}
