using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Adapters;

/// <summary>
/// Wraps a feed-forward block's first projection (up_proj, intermediate.dense, lin1, c_fc, dense_h_to_4h) so the
/// parallel adapters on the block's output projection can read the block's input: every forward remembers its input
/// until the paired <see cref="BottleneckAdapterLinear"/> takes it later in the same block. This is how a parallel
/// adapter wraps "the FFN module" without changing the model's code: each feed-forward block calls its first
/// projection before its output projection. The tap computes nothing else and holds no parameters.
/// </summary>
public sealed class AdapterInputTap : LinearLayer, ITunerLayer
{
    private readonly ModuleSlot<LinearLayer> baseLayer;
    private readonly List<string> adapters = [];
    private readonly List<string> active = [];
    private Tensor? pending;

    /// <summary>Wraps <paramref name="baseLayer"/>.</summary>
    public AdapterInputTap(LinearLayer baseLayer)
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        if (baseLayer is AdapterInputTap) throw new ArgumentException("the layer is already tapped", nameof(baseLayer));
        this.baseLayer = RegisterModule("base_layer", baseLayer);
    }

    /// <summary>The wrapped layer.</summary>
    public LinearLayer Base => baseLayer.Module;

    /// <inheritdoc/>
    Module ITunerLayer.BaseLayer => baseLayer.Module;

    /// <inheritdoc/>
    public override int InFeatures => baseLayer.Module.InFeatures;

    /// <inheritdoc/>
    public override int OutFeatures => baseLayer.Module.OutFeatures;

    /// <summary>The parallel adapters that read this tap.</summary>
    public IReadOnlyList<string> AdapterNames => adapters;

    /// <inheritdoc/>
    public IReadOnlyList<string> ActiveAdapters => active;

    /// <inheritdoc/>
    public IReadOnlyList<string> MergedAdapters => [];

    /// <inheritdoc/>
    public bool AdaptersEnabled { get; set; } = true;

    /// <summary>Registers a parallel adapter that reads this tap.</summary>
    internal void AddReader(string adapterName)
    {
        if (!adapters.Contains(adapterName)) adapters.Add(adapterName);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        pending = input;
        return baseLayer.Module.Forward(input);
    }

    /// <summary>
    /// The input of the latest forward, handed over once: <paramref name="reader"/> (the output projection's path)
    /// names the reader in the error raised when the block did not call this layer first.
    /// </summary>
    internal Tensor TakeInput(string reader)
    {
        var x = pending ?? throw new InvalidOperationException(
            $"parallel adapter at '{reader}' found no feed-forward input: the block did not call its input projection (the tapped layer) before its output projection in this forward");
        pending = null;
        return x;
    }

    /// <inheritdoc/>
    public void SetActiveAdapters(IReadOnlyList<string> adapterNames, bool trainable, bool ignoreMissing = false)
    {
        ArgumentNullException.ThrowIfNull(adapterNames);
        active.Clear();
        active.AddRange(adapterNames.Where(adapters.Contains));
    }

    /// <inheritdoc/>
    public void SetAdapterTrainable(string adapterName, bool trainable)
    {
    }

    /// <inheritdoc/>
    public void Merge(IReadOnlyList<string>? adapterNames = null, bool safeMerge = false)
    {
        // Nothing to fold: the adapter's weights live on the output projection, which refuses the merge.
    }

    /// <inheritdoc/>
    public void Unmerge()
    {
    }

    /// <inheritdoc/>
    public IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName) => [];
}
