using Microsoft.ML.Peft.NN;

namespace Microsoft.ML.Peft.Tuners;

/// <summary>
/// Named child modules added at run time (torch.nn.ModuleDict): adapter layers keep one entry per adapter name, so
/// parameter names come out as PEFT's, e.g. "q_proj.lora_A.default.weight".
/// </summary>
/// <typeparam name="T">The entry type.</typeparam>
public sealed class ModuleDict<T> : Module where T : Module
{
    private readonly Dictionary<string, ModuleSlot<T>> slots = new(StringComparer.Ordinal);
    private readonly List<string> order = [];

    /// <summary>Keys in insertion order.</summary>
    public IReadOnlyList<string> Keys => order;

    /// <summary>Number of entries.</summary>
    public int Count => order.Count;

    /// <summary>The module under <paramref name="key"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such key; the message lists the keys present.</exception>
    public T this[string key] => slots.TryGetValue(key, out var slot)
        ? slot.Module
        : throw new KeyNotFoundException($"no entry '{key}' (entries: {string.Join(", ", order)})");

    /// <summary>Whether <paramref name="key"/> exists.</summary>
    public bool ContainsKey(string key) => slots.ContainsKey(key);

    /// <summary>Adds a module under <paramref name="key"/> (a non-empty name without dots, not yet used).</summary>
    public void Add(string key, T module)
    {
        slots.Add(key, RegisterModule(key, module));
        order.Add(key);
    }
}
