using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Adapters;

/// <summary>
/// An output projection with bottleneck adapters after it: y = base(x), then for each active adapter
/// y ← y + s·up(f(down(a))) where a = y for a serial (Houlsby) adapter and a = the feed-forward block's input for a
/// parallel (He et al.) adapter. Sparse adapters multiply their weights by a fixed 0/1 mask in every forward, so the
/// pruned weights get exactly zero gradient (and stay exactly zero under AdamW, whose update of an entry that never
/// saw a gradient is zero). AdapterFusion entries mix several frozen adapters with attention (<see cref="AdapterFusion"/>).
/// In-memory names: "base_layer", "adapter_down.&lt;adapter&gt;", "adapter_up.&lt;adapter&gt;", "adapter_fusion.&lt;fusion&gt;".
/// </summary>
/// <remarks>Cost per adapter: two skinny GEMMs ([rows, out] → [rows, b] → [rows, out]) and one add on top of the base layer.</remarks>
public sealed class BottleneckAdapterLinear : LinearLayer, ITunerLayer
{
    private readonly ModuleSlot<LinearLayer> baseLayer;
    private readonly ModuleDict<Linear> down;
    private readonly ModuleDict<Linear> up;
    private readonly ModuleDict<AdapterFusion> fusions;
    private readonly Dictionary<string, AdapterSettings> settings = new(StringComparer.Ordinal);
    private readonly List<string> order = [];
    private readonly List<string> active = [];
    private bool enabled = true;

    /// <summary>Wraps <paramref name="baseLayer"/>; <paramref name="path"/> (its dotted name) appears in error messages.</summary>
    public BottleneckAdapterLinear(LinearLayer baseLayer, string path)
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        if (baseLayer is BottleneckAdapterLinear) throw new ArgumentException("cannot wrap a BottleneckAdapterLinear in another; add an adapter to it instead", nameof(baseLayer));
        Path = path;
        this.baseLayer = RegisterModule("base_layer", baseLayer);
        down = RegisterModule("adapter_down", new ModuleDict<Linear>()).Module;
        up = RegisterModule("adapter_up", new ModuleDict<Linear>()).Module;
        fusions = RegisterModule("adapter_fusion", new ModuleDict<AdapterFusion>()).Module;
    }

    /// <summary>The layer's dotted path in the model (for messages).</summary>
    public string Path { get; }

    /// <summary>The wrapped layer.</summary>
    public LinearLayer Base => baseLayer.Module;

    /// <inheritdoc/>
    Module ITunerLayer.BaseLayer => baseLayer.Module;

    /// <inheritdoc/>
    public override int InFeatures => baseLayer.Module.InFeatures;

    /// <inheritdoc/>
    public override int OutFeatures => baseLayer.Module.OutFeatures;

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
            if (value == enabled) return;
            if (!value)
            {
                foreach (var name in order) SetAdapterTrainable(name, false);
            }
            enabled = value;
        }
    }

    /// <summary>The down-projection [bottleneck, out] of an adapter.</summary>
    public Linear Down(string adapterName) => down[adapterName];

    /// <summary>The up-projection [out, bottleneck] of an adapter.</summary>
    public Linear Up(string adapterName) => up[adapterName];

    /// <summary>The 0/1 masks (down, up) of a sparse adapter, or null for a dense one.</summary>
    public (Tensor Down, Tensor Up)? Masks(string adapterName) => Settings(adapterName).Masks;

    /// <summary>The fusion layer of an AdapterFusion adapter.</summary>
    public AdapterFusion Fusion(string fusionName) => fusions[fusionName];

    /// <summary>
    /// Adds a bottleneck adapter: down [b, out] initialised as torch.nn.Linear (Kaiming-uniform weight, uniform bias),
    /// up [out, b] zero (weight and bias) when <paramref name="config"/>.InitAdapterWeights, else Linear-initialised too;
    /// then, when sparse, both weight matrices pruned by magnitude. A parallel adapter reads <paramref name="tap"/>.
    /// </summary>
    internal void AddAdapter(string adapterName, BottleneckAdapterConfig config, AdapterInputTap? tap, Generator generator)
    {
        CheckNewName(adapterName);
        if ((config.Placement == AdapterPlacement.Parallel) != (tap is not null))
            throw new ArgumentException("a parallel adapter needs its input tap, a serial one none", nameof(tap));
        int width = OutFeatures, b = config.BottleneckSize;
        Linear d, u;
        using (TensorScope.Untracked())
        {
            d = new Linear(width, b, generator);
            u = new Linear(b, width, generator);
            if (config.InitAdapterWeights)
            {
                using (Autograd.NoGrad())
                {
                    u.Weight.Zero_();
                    u.Bias!.Zero_();
                }
            }
        }
        (Tensor, Tensor)? masks = config.Sparsity > 0
            ? (MagnitudePruning.Prune(d.Weight, config.Sparsity, generator), MagnitudePruning.Prune(u.Weight, config.Sparsity, generator))
            : null;
        down.Add(adapterName, d);
        up.Add(adapterName, u);
        settings[adapterName] = new AdapterSettings(config.Activation, (float)config.Scaling, tap, masks);
        order.Add(adapterName);
        tap?.AddReader(adapterName);
    }

    /// <summary>Adds an AdapterFusion entry over the serial adapters <paramref name="fused"/> of this layer (frozen).</summary>
    internal void AddFusion(string fusionName, IReadOnlyList<string> fused, Generator generator)
    {
        CheckNewName(fusionName);
        foreach (var name in fused)
        {
            var s = Settings(name);
            if (s.Tap is not null) throw new PeftConfigException($"AdapterFusion over '{name}' at '{Path}': only serial adapters can be fused");
        }
        fusions.Add(fusionName, new AdapterFusion(OutFeatures, fused, generator));
        order.Add(fusionName);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var y = baseLayer.Module.Forward(input);
        if (!enabled) return y;
        // Each tap hands its input over once per forward; adapters reading the same tap share it.
        AdapterInputTap? lastTap = null;
        Tensor? lastInput = null;
        List<(AdapterInputTap Tap, Tensor Input)>? otherTaps = null;
        foreach (var name in active)
        {
            if (fusions.ContainsKey(name))
            {
                var fusion = fusions[name];
                var outputs = new Tensor[fusion.Fused.Count];
                for (int i = 0; i < outputs.Length; i++) outputs[i] = y.Add(Bottleneck(fusion.Fused[i], y));
                y = fusion.Forward(y, outputs);
                continue;
            }
            var s = settings[name];
            Tensor source = y;
            if (s.Tap is { } tap)
            {
                if (!ReferenceEquals(tap, lastTap))
                {
                    if (lastTap is not null) (otherTaps ??= []).Add((lastTap, lastInput!));
                    int seen = otherTaps?.FindIndex(t => ReferenceEquals(t.Tap, tap)) ?? -1;
                    lastInput = seen >= 0 ? otherTaps![seen].Input : tap.TakeInput(Path);
                    lastTap = tap;
                }
                source = lastInput!;
            }
            y = y.Add(Bottleneck(name, source));
        }
        return y;
    }

    /// <summary>s·up(f(down(a))) for one adapter, with masked weights when it is sparse.</summary>
    internal Tensor Bottleneck(string adapterName, Tensor a)
    {
        var s = settings[adapterName];
        Linear d = down[adapterName], u = up[adapterName];
        var h = s.Masks is { } m ? a.Linear(d.Weight.Mul(m.Down), d.Bias) : d.Forward(a);
        h = s.Activation.Apply(h);
        var o = s.Masks is { } m2 ? h.Linear(u.Weight.Mul(m2.Up), u.Bias) : u.Forward(h);
        return s.Scaling == 1f ? o : o.Mul(s.Scaling);
    }

    /// <inheritdoc/>
    public void SetActiveAdapters(IReadOnlyList<string> adapterNames, bool trainable, bool ignoreMissing = false)
    {
        ArgumentNullException.ThrowIfNull(adapterNames);
        var chosen = new List<string>();
        foreach (var name in adapterNames)
        {
            if (settings.ContainsKey(name) || fusions.ContainsKey(name)) chosen.Add(name);
            else if (!ignoreMissing) throw new KeyNotFoundException($"adapter '{name}' does not exist on '{Path}' (adapters: {string.Join(", ", order)})");
        }
        active.Clear();
        active.AddRange(chosen);
        foreach (var name in order) SetAdapterTrainable(name, trainable && enabled && active.Contains(name));
    }

    /// <inheritdoc/>
    public void SetAdapterTrainable(string adapterName, bool trainable)
    {
        // A fusion trains its query/key/value only; the adapters it mixes stay frozen (Pfeiffer et al.).
        if (fusions.ContainsKey(adapterName))
        {
            fusions[adapterName].SetRequiresGrad(trainable);
            return;
        }
        _ = Settings(adapterName);
        down[adapterName].SetRequiresGrad(trainable);
        up[adapterName].SetRequiresGrad(trainable);
    }

    /// <summary>Refused: an adapter with a non-linearity cannot be folded into the base weight.</summary>
    public void Merge(IReadOnlyList<string>? adapterNames = null, bool safeMerge = false) =>
        throw new NotSupportedException($"bottleneck adapters at '{Path}' cannot be merged: up(f(down(y))) is non-linear in y, so no weight matrix reproduces it; keep the adapter layers (or Unload to drop them)");

    /// <inheritdoc/>
    public void Unmerge()
    {
        // Nothing is ever merged.
    }

    /// <inheritdoc/>
    public IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName)
    {
        if (fusions.ContainsKey(adapterName))
        {
            foreach (var (name, tensor) in fusions[adapterName].NamedParameters()) yield return ("adapter_fusion." + name, tensor);
            yield break;
        }
        var s = Settings(adapterName);
        Linear d = down[adapterName], u = up[adapterName];
        yield return ("adapter_down.weight", d.Weight);
        yield return ("adapter_down.bias", d.Bias!);
        yield return ("adapter_up.weight", u.Weight);
        yield return ("adapter_up.bias", u.Bias!);
        if (s.Masks is { } m)
        {
            yield return ("adapter_down.mask", m.Down);
            yield return ("adapter_up.mask", m.Up);
        }
    }

    private AdapterSettings Settings(string adapterName) => settings.TryGetValue(adapterName, out var s)
        ? s
        : throw new KeyNotFoundException($"no bottleneck adapter '{adapterName}' on '{Path}' (adapters: {string.Join(", ", order)})");

    private void CheckNewName(string adapterName)
    {
        ArgumentException.ThrowIfNullOrEmpty(adapterName);
        if (settings.ContainsKey(adapterName) || fusions.ContainsKey(adapterName)) throw new InvalidOperationException($"adapter '{adapterName}' already exists on '{Path}'");
    }

    /// <summary>Per-adapter settings that are not parameters.</summary>
    private sealed record AdapterSettings(ActivationKind Activation, float Scaling, AdapterInputTap? Tap, (Tensor Down, Tensor Up)? Masks);
}
