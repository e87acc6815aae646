using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Adapters;

/// <summary>
/// AdapterFusion (Pfeiffer et al., 2021) at one layer: attention over the outputs of several trained, frozen adapters.
/// With h the sub-layer's output and z_n = h + adapter_n(h) each adapter's output,
/// q = W_Q h + b_Q, k_n = W_K z_n + b_K, v_n = W_V z_n, p = softmax_n(q·k_n), out = Σ_n p_n v_n.
/// </summary>
/// <remarks>
/// Initialisation: query and key weights N(0, 0.02²) with zero biases (BERT's initialiser), value the identity, so at
/// initialisation the layer outputs a convex combination of the adapters' own outputs. Parameters: "query.weight",
/// "query.bias", "key.weight", "key.bias", "value.weight" (2·(d² + d) + d² per layer). Cost: three d×d projections
/// of n + 1 rows per token and an n-way softmax.
/// </remarks>
public sealed class AdapterFusion : Module
{
    private readonly ModuleSlot<Linear> query;
    private readonly ModuleSlot<Linear> key;
    private readonly ModuleSlot<Linear> value;

    /// <summary>A fusion of <paramref name="fused"/> adapters on a layer of width <paramref name="width"/>.</summary>
    public AdapterFusion(int width, IReadOnlyList<string> fused, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(fused);
        ArgumentNullException.ThrowIfNull(generator);
        if (fused.Count < 2) throw new ArgumentException($"AdapterFusion needs at least two adapters, got [{string.Join(", ", fused)}]", nameof(fused));
        Fused = fused.ToArray();
        Tensor qw, kw, vw;
        using (TensorScope.Untracked())
        {
            qw = Tensor.Empty(width, width).Normal_(generator, 0f, 0.02f);
            kw = Tensor.Empty(width, width).Normal_(generator, 0f, 0.02f);
            vw = Tensor.Zeros(width, width);
            var v = vw.AsSpan<float>();
            for (int i = 0; i < width; i++) v[i * width + i] = 1f;
            query = RegisterModule("query", new Linear(qw, Tensor.Zeros(width)));
            key = RegisterModule("key", new Linear(kw, Tensor.Zeros(width)));
            value = RegisterModule("value", new Linear(vw));
        }
    }

    /// <summary>The adapters mixed, in order.</summary>
    public IReadOnlyList<string> Fused { get; }

    /// <summary>The query projection (applied to the sub-layer output).</summary>
    public Linear Query => query.Module;

    /// <summary>The key projection (applied to each adapter's output).</summary>
    public Linear Key => key.Module;

    /// <summary>The value projection (applied to each adapter's output; identity at init).</summary>
    public Linear Value => value.Module;

    /// <summary>
    /// Mixes <paramref name="adapterOutputs"/> (each [..., d], in <see cref="Fused"/> order) with attention whose
    /// query is <paramref name="hidden"/> [..., d].
    /// </summary>
    public Tensor Forward(Tensor hidden, IReadOnlyList<Tensor> adapterOutputs)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(adapterOutputs);
        if (adapterOutputs.Count != Fused.Count)
            throw new ArgumentException($"AdapterFusion over [{string.Join(", ", Fused)}] got {adapterOutputs.Count} adapter outputs");
        int rank = hidden.Rank;
        var z = Tensor.Stack(adapterOutputs, rank - 1);                 // [..., n, d]
        var q = query.Module.Forward(hidden).Unsqueeze(rank - 1);       // [..., 1, d]
        var k = key.Module.Forward(z);                                  // [..., n, d]
        var v = value.Module.Forward(z);                                // [..., n, d]
        var p = k.Mul(q).Sum(rank).Softmax();                           // [..., n]
        return p.Unsqueeze(rank).Mul(v).Sum(rank - 1);                  // [..., d]
    }

    /// <summary>The attention weights over the adapters for <paramref name="hidden"/> (for inspection and tests).</summary>
    public Tensor Weights(Tensor hidden, IReadOnlyList<Tensor> adapterOutputs)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(adapterOutputs);
        int rank = hidden.Rank;
        var z = Tensor.Stack(adapterOutputs, rank - 1);
        return key.Module.Forward(z).Mul(query.Module.Forward(hidden).Unsqueeze(rank - 1)).Sum(rank).Softmax();
    }
}
