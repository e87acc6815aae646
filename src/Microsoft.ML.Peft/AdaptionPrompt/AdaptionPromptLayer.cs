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
public sealed class AdaptionPromptLayer : SingleActiveTunerLayer, IAttentionAdapter
{
    /// <inheritdoc/>
    protected override string AdapterKind => "adaption prompt";

    /// <inheritdoc/>
    protected override string MergeRefusal => "an adaption prompt (LLaMA-Adapter) adds its own attention and cannot be merged into the model's weights";

    /// <summary>Adds an adapter: prompt N(0, 1) [1, <paramref name="length"/>, <paramref name="hidden"/>], gate zero [1].</summary>
    public void Add(string adapterName, int length, int hidden, Generator generator)
    {
        ThrowIfExists(adapterName);
        AddAdapter(adapterName, new AdaptionWeights(length, hidden, generator));
    }

    /// <summary>The prompt [1, len, hidden] of an adapter.</summary>
    public Tensor Prompt(string adapterName) => Weights(adapterName).Prompt;

    /// <summary>The gate [1] of an adapter.</summary>
    public Tensor Gate(string adapterName) => Weights(adapterName).Gate;

    /// <inheritdoc/>
    public Tensor? Attend(Tensor query, LinearLayer keyProjection, LinearLayer valueProjection, int keyValueHeads, int headDim)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(keyProjection);
        ArgumentNullException.ThrowIfNull(valueProjection);
        if (Current is not AdaptionWeights weights) return null;
        int batch = query.Size(0), length = weights.Prompt.Size(1);
        var keys = AttentionHelpers.SplitHeads(keyProjection.Forward(weights.Prompt), keyValueHeads, headDim).Expand(batch, keyValueHeads, length, headDim);
        var values = AttentionHelpers.SplitHeads(valueProjection.Forward(weights.Prompt), keyValueHeads, headDim).Expand(batch, keyValueHeads, length, headDim);
        return query.ScaledDotProductAttention(keys, values).Mul(weights.Gate);
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName)
    {
        var w = Weights(adapterName);
        yield return ("adaption_prompt", w.Prompt);
        yield return ("adaption_gate", w.Gate);
    }

    private AdaptionWeights Weights(string adapterName) => (AdaptionWeights)Adapter(adapterName);

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
