using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Common;

/// <summary>The activation functions named by config.json (<c>hidden_act</c>, <c>activation</c>, <c>activation_function</c>).</summary>
public enum ActivationKind
{
    /// <summary>"gelu": exact x·Φ(x).</summary>
    Gelu,

    /// <summary>"gelu_new", "gelu_pytorch_tanh", "gelu_fast": the tanh approximation.</summary>
    GeluTanh,

    /// <summary>"relu".</summary>
    Relu,

    /// <summary>"silu" / "swish": x·σ(x).</summary>
    Silu,
}

/// <summary>Parses activation names (failing at model construction, naming the config field) and applies them.</summary>
public static class Activation
{
    /// <summary>The activation for a config value; throws <see cref="ModelConfigException"/> for unsupported names.</summary>
    public static ActivationKind Parse(string name, ModelConfig config, string field)
    {
        ArgumentNullException.ThrowIfNull(config);
        return name switch
        {
            "gelu" => ActivationKind.Gelu,
            "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => ActivationKind.GeluTanh,
            "relu" => ActivationKind.Relu,
            "silu" or "swish" => ActivationKind.Silu,
            _ => throw new ModelConfigException(config.SourcePath ?? "config.json", field,
                $"activation '{name}' is not supported; supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish"),
        };
    }

    /// <summary>Applies <paramref name="kind"/> elementwise.</summary>
    public static Tensor Apply(this ActivationKind kind, Tensor x) => kind switch
    {
        ActivationKind.Gelu => x.Gelu(),
        ActivationKind.GeluTanh => x.Gelu(GeluApproximation.Tanh),
        ActivationKind.Relu => x.Relu(),
        ActivationKind.Silu => x.Silu(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown activation"),
    };
}
