using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tuners;

/// <summary>
/// Named parameters added at run time (torch.nn.ParameterDict), so single-tensor adapter weights get PEFT's in-memory names, e.g. (IA)³'s
/// "q_proj.ia3_l.default" rather than a nested "…default.weight".
/// </summary>
internal sealed class ParameterDict : Module
{
    private readonly Dictionary<string, Parameter> entries = new(StringComparer.Ordinal);
    private readonly List<string> order = [];

    /// <summary>Keys in insertion order.</summary>
    public IReadOnlyList<string> Keys => order;

    /// <summary>The live tensor under <paramref name="key"/>.</summary>
    public Tensor this[string key] => entries.TryGetValue(key, out var p)
        ? p.Value
        : throw new KeyNotFoundException($"no entry '{key}' (entries: {string.Join(", ", order)})");

    /// <summary>Whether <paramref name="key"/> exists.</summary>
    public bool ContainsKey(string key) => entries.ContainsKey(key);

    /// <summary>Registers <paramref name="value"/> under <paramref name="key"/> (trainable when float32).</summary>
    public void Add(string key, Tensor value)
    {
        entries.Add(key, RegisterParameter(key, value));
        order.Add(key);
    }
}
