using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.AdaptionPrompt;

/// <summary>
/// LLaMA-Adapter's addition to one attention module (PEFT's <c>AdaptedAttention</c>, attached under the child name
/// <c>adaption</c>): with prompt P [1, len, hidden] and gate g, context = g · softmax(q · k_proj(P)ᵀ / √d) · v_proj(P)
/// over the adapter positions only (no mask: every query sees every adapter vector; keys get no rotary embedding),
/// with grouped-query K/V heads shared inside the fused attention. One adapter active at a time; nothing to merge.
/// </summary>
public sealed class AdaptionPromptLayer : Module, ITunerLayer, IAttentionAdapter
{
    private readonly Dictionary<string, ModuleSlot<AdaptionWeights>> adapters = new(StringComparer.Ordinal);
    private readonly List<string> order = [];
    private readonly List<string> active = [];
    private readonly Module emptyBase = new PromptPlumbing.EmptyModule();
    private bool enabled = true;

    /// <summary>Adds an adapter: prompt N(0, 1) [1, <paramref name="length"/>, <paramref name="hidden"/>], gate zero [1].</summary>
    public void Add(string adapterName, int length, int hidden, Generator generator)
    {
        if (adapters.ContainsKey(adapterName)) throw new InvalidOperationException($"adaption prompt '{adapterName}' already exists on this layer");
        adapters.Add(adapterName, RegisterModule(adapterName, new AdaptionWeights(length, hidden, generator)));
        order.Add(adapterName);
    }

    /// <summary>The prompt [1, len, hidden] of an adapter.</summary>
    public Tensor Prompt(string adapterName) => Weights(adapterName).Prompt;

    /// <summary>The gate [1] of an adapter.</summary>
    public Tensor Gate(string adapterName) => Weights(adapterName).Gate;

    /// <inheritdoc/>
    public Module BaseLayer => emptyBase;

    /// <inheritdoc/>
    public IReadOnlyList<string> AdapterNames => order;

    /// <inheritdoc/>
    public IReadOnlyList<string> ActiveAdapters => active;

    /// <inheritdoc/>
    public IReadOnlyList<string> MergedAdapters => [];

    /// <inheritdoc/>
    public bool AdaptersEnabled
    {
        get => enabled;
        set
        {
            if (!value)
            {
                foreach (var name in order) SetAdapterTrainable(name, false);
            }
            enabled = value;
        }
    }

    /// <inheritdoc/>
    public Tensor? Attend(Tensor query, LinearLayer keyProjection, LinearLayer valueProjection, int keyValueHeads, int headDim)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(keyProjection);
        ArgumentNullException.ThrowIfNull(valueProjection);
        if (!enabled || active.Count != 1) return null;
        var weights = Weights(active[0]);
        int batch = query.Size(0), length = weights.Prompt.Size(1);
        var keys = AttentionHelpers.SplitHeads(keyProjection.Forward(weights.Prompt), keyValueHeads, headDim).Expand(batch, keyValueHeads, length, headDim);
        var values = AttentionHelpers.SplitHeads(valueProjection.Forward(weights.Prompt), keyValueHeads, headDim).Expand(batch, keyValueHeads, length, headDim);
        return query.ScaledDotProductAttention(keys, values).Mul(weights.Gate);
    }

    /// <inheritdoc/>
    public void SetActiveAdapters(IReadOnlyList<string> adapterNames, bool trainable, bool ignoreMissing = false)
    {
        ArgumentNullException.ThrowIfNull(adapterNames);
        var chosen = new List<string>();
        foreach (var name in adapterNames)
        {
            if (adapters.ContainsKey(name)) chosen.Add(name);
            else if (!ignoreMissing) throw new KeyNotFoundException($"adaption prompt '{name}' does not exist (adapters: {string.Join(", ", order)})");
        }
        if (chosen.Count > 1) throw new InvalidOperationException($"only one adaption prompt can be active at a time; asked for [{string.Join(", ", chosen)}]");
        active.Clear();
        active.AddRange(chosen);
        foreach (var name in order) SetAdapterTrainable(name, trainable && enabled && active.Contains(name));
    }

    /// <inheritdoc/>
    public void SetAdapterTrainable(string adapterName, bool trainable) => Weights(adapterName).SetRequiresGrad(trainable);

    /// <inheritdoc/>
    public void Merge(IReadOnlyList<string>? adapterNames = null, bool safeMerge = false) =>
        throw new InvalidOperationException("an adaption prompt (LLaMA-Adapter) adds its own attention and cannot be merged into the model's weights");

    /// <inheritdoc/>
    public void Unmerge()
    {
    }

    /// <inheritdoc/>
    public IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName)
    {
        var w = Weights(adapterName);
        yield return ("adaption_prompt", w.Prompt);
        yield return ("adaption_gate", w.Gate);
    }

    private AdaptionWeights Weights(string adapterName) => adapters.TryGetValue(adapterName, out var slot)
        ? slot.Module
        : throw new KeyNotFoundException($"adaption prompt '{adapterName}' does not exist (adapters: {string.Join(", ", order)})");

    /// <summary>One adapter's tensors under PEFT's names.</summary>
    private sealed class AdaptionWeights : Module
    {
        private readonly Parameter prompt;
        private readonly Parameter gate;

        public AdaptionWeights(int length, int hidden, Generator generator)
        {
            Tensor p, g;
            using (TensorScope.Untracked())
            {
                p = Tensor.Randn(generator, 1, length, hidden);
                g = Tensor.Zeros(1);
            }
            prompt = RegisterParameter("adaption_prompt", p);
            gate = RegisterParameter("adaption_gate", g);
        }

        public Tensor Prompt => prompt.Value;

        public Tensor Gate => gate.Value;
    }
}
