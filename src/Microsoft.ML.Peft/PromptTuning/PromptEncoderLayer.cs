using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.PromptTuning;

/// <summary>
/// The tuner layer of every soft-prompt method (PEFT's <c>PeftModel.prompt_encoder</c> ModuleDict): it sits in the
/// backbone's <c>prompt_encoder</c> slot, holds one <see cref="VirtualTokenEncoder"/> per adapter (as a child named
/// after the adapter), and feeds the
/// active one into the backbone's forward as input tokens or as key/value prefixes (<see cref="IPromptSource"/>).
/// Only one prompt adapter can be active at a time (as in PEFT); none can be merged into weights.
/// </summary>
public sealed class PromptEncoderLayer : SingleActiveTunerLayer, IPromptSource
{
    private readonly PromptGeometry geometry;

    /// <summary>A layer for a backbone of <paramref name="geometry"/>.</summary>
    public PromptEncoderLayer(PromptGeometry geometry)
    {
        ArgumentNullException.ThrowIfNull(geometry);
        this.geometry = geometry;
    }

    /// <summary>Adds an adapter's encoder (not activated).</summary>
    public void Add(string adapterName, VirtualTokenEncoder encoder)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ThrowIfExists(adapterName);
        int expected = encoder.IsPrefix ? geometry.Layers * 2 * geometry.KeyValueHeads * geometry.HeadDim : geometry.HiddenSize;
        if (encoder.Width != expected)
            throw new PeftConfigException($"prompt adapter '{adapterName}' produces vectors of {encoder.Width} values but {geometry.Architecture} needs {expected}");
        // Adapters are direct children, so parameter names read as PEFT's "prompt_encoder.default.embedding.weight".
        AddAdapter(adapterName, encoder);
    }

    /// <summary>
    /// After training: every reparameterised prompt encoder in <paramref name="model"/> (P-tuning's MLP/LSTM, the prefix
    /// projection) gives way to the table it computes — what PEFT saves and what loading gives back — so scoring and
    /// generation stop recomputing it. Returns how many encoders were replaced.
    /// </summary>
    public static int UseLookupTables(Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        int replaced = 0;
        foreach (var layer in model.NamedModules().Select(m => m.Module).OfType<PromptEncoderLayer>().ToList())
        {
            foreach (var name in layer.AdapterNames)
            {
                var encoder = layer.Encoder(name);
                if (!encoder.IsReparameterized) continue;
                encoder.UseLookupTable();
                replaced++;
            }
        }
        return replaced;
    }

    /// <summary>The encoder of <paramref name="adapterName"/>.</summary>
    public VirtualTokenEncoder Encoder(string adapterName) => (VirtualTokenEncoder)Adapter(adapterName);

    /// <inheritdoc/>
    protected override string AdapterKind => "prompt adapter";

    /// <inheritdoc/>
    protected override string MergeRefusal => "soft prompts (prompt tuning, P-tuning, prefix tuning) cannot be merged into the model's weights";

    /// <inheritdoc/>
    public int InputPromptLength => ActiveEncoder is { IsPrefix: false } e ? e.NumVirtualTokens : 0;

    /// <inheritdoc/>
    public int PrefixLength => ActiveEncoder is { IsPrefix: true } e ? e.NumVirtualTokens : 0;

    /// <inheritdoc/>
    public Tensor InputPrompt() => ActiveEncoder?.Compute() ?? throw new InvalidOperationException("no prompt adapter is active");

    /// <inheritdoc/>
    /// <remarks>PEFT's view [n, 2L, kvH, d] permuted to [2L, kvH, n, d] (a strided view; the attention copies it in front of its keys).</remarks>
    public Tensor PrefixKeyValues()
    {
        var table = ActiveEncoder?.Compute() ?? throw new InvalidOperationException("no prompt adapter is active");
        int n = table.Size(0);
        return table.Reshape(n, 2 * geometry.Layers, geometry.KeyValueHeads, geometry.HeadDim).Permute(1, 2, 0, 3);
    }

    private VirtualTokenEncoder? ActiveEncoder => (VirtualTokenEncoder?)Current;

    /// <inheritdoc/>
    public override IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName)
    {
        yield return (PromptTuningModel.PromptEmbeddingsKey, Encoder(adapterName).SavedTable());
    }
}
