using System.Globalization;

namespace Microsoft.ML.Peft.Lora;

/// <summary>How a new LoRA adapter's A and B start (PEFT's <c>init_lora_weights</c>).</summary>
public enum LoraInitKind
{
    /// <summary>true: A Kaiming-uniform with a = √5 (as nn.Linear, i.e. U(−1/√in, 1/√in)), B = 0; the adapter starts as a no-op.</summary>
    Default,

    /// <summary>false: A and B both keep nn.Linear's default init (Kaiming-uniform), so the adapter is not a no-op (debugging).</summary>
    Random,

    /// <summary>"gaussian": A ~ N(0, (1/r)²) (standard deviation 1/r, as PEFT), B = 0.</summary>
    Gaussian,

    /// <summary>
    /// "pissa" / "pissa_niter_K": A, B from the top-r singular triplets of the base weight W (exact SVD, or a
    /// randomized SVD with K subspace iterations); the base weight becomes the frozen residual W − scaling·B·A.
    /// </summary>
    Pissa,

    /// <summary>
    /// "olora": A = R[:r], B = Q[:, :r] of the QR factorisation of the base weight W; the base weight becomes the frozen
    /// residual W − scaling·B·A, so the output is unchanged at init.
    /// </summary>
    Olora,
}

/// <summary>
/// A value of <c>init_lora_weights</c>: <see cref="Default"/> (true), <see cref="Random"/> (false),
/// <see cref="Gaussian"/>, <see cref="Pissa"/>, <see cref="PissaFast"/>("pissa_niter_K") or <see cref="Olora"/>.
/// </summary>
/// <param name="Kind">The scheme.</param>
/// <param name="PissaIterations">For "pissa_niter_K": K, the randomized SVD's subspace iterations; null for exact PiSSA.</param>
public sealed record LoraInit(LoraInitKind Kind, int? PissaIterations = null)
{
    /// <summary>init_lora_weights = true.</summary>
    public static LoraInit Default { get; } = new(LoraInitKind.Default);

    /// <summary>init_lora_weights = false.</summary>
    public static LoraInit Random { get; } = new(LoraInitKind.Random);

    /// <summary>init_lora_weights = "gaussian".</summary>
    public static LoraInit Gaussian { get; } = new(LoraInitKind.Gaussian);

    /// <summary>init_lora_weights = "pissa" (exact SVD).</summary>
    public static LoraInit Pissa { get; } = new(LoraInitKind.Pissa);

    /// <summary>init_lora_weights = "olora".</summary>
    public static LoraInit Olora { get; } = new(LoraInitKind.Olora);

    /// <summary>init_lora_weights = "pissa_niter_<paramref name="iterations"/>" (randomized SVD).</summary>
    public static LoraInit PissaFast(int iterations)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(iterations);
        return new(LoraInitKind.Pissa, iterations);
    }

    /// <summary>The JSON value: true, false, "gaussian", "pissa", "pissa_niter_K" or "olora".</summary>
    internal object ToJsonValue() => Kind switch
    {
        LoraInitKind.Default => true,
        LoraInitKind.Random => false,
        LoraInitKind.Gaussian => "gaussian",
        LoraInitKind.Pissa when PissaIterations is { } k => "pissa_niter_" + k.ToString(CultureInfo.InvariantCulture),
        LoraInitKind.Pissa => "pissa",
        LoraInitKind.Olora => "olora",
        _ => throw new InvalidOperationException($"unknown LoRA init {Kind}"),
    };

    /// <summary>Parses a JSON value; null when it is not one of the supported forms.</summary>
    internal static LoraInit? Parse(object? value)
    {
        switch (value)
        {
            case null or true:
                return Default;
            case false:
                return Random;
            case string s when s.Equals("gaussian", StringComparison.OrdinalIgnoreCase):
                return Gaussian;
            case "pissa":
                return Pissa;
            case "olora":
                return Olora;
            case string s when s.StartsWith("pissa_niter_", StringComparison.Ordinal) &&
                               int.TryParse(s.AsSpan("pissa_niter_".Length), NumberStyles.None, CultureInfo.InvariantCulture, out int k):
                return PissaFast(k);
            default:
                return null;
        }
    }

    /// <inheritdoc/>
    public override string ToString() => ToJsonValue() switch
    {
        bool b => b ? "true" : "false",
        var v => (string)v,
    };
}
