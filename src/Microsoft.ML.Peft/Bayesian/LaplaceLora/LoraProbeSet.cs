using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// Puts a <see cref="ProbedLoraLayer"/> in place of every LoRA layer (with enabled, active adapters) of a
/// <see cref="PeftModel"/>, freezes all parameters while installed so backward passes leave no parameter gradients
/// behind, and runs forward + backward passes seeded by a caller-supplied ∂L/∂logits. Dispose restores the original
/// layers and trainable flags.
/// </summary>
internal sealed class LoraProbeSet : IDisposable
{
    private readonly Module model;
    private readonly List<(string Path, Module Probe, Module Original)> installs = [];
    private readonly List<(Tensor Parameter, bool RequiresGrad)> flags = [];
    private IReadOnlyList<ProbedMatrix> recorded;

    public LoraProbeSet(PeftModel peft, IReadOnlyList<string> headModules)
    {
        ArgumentNullException.ThrowIfNull(peft);
        model = peft.Model;
        var layers = peft.TunerLayers().Where(l => l.Layer is LoraLinear { AdaptersEnabled: true, ActiveAdapters.Count: > 0 })
            .Select(l => (l.Path, Probe: new ProbedLoraLayer(l.Path, (LoraLinear)l.Layer))).ToList();
        if (layers.Count == 0)
            throw new InvalidOperationException("Laplace-LoRA: the model has no enabled LoRA layers with an active adapter (no lora_A/lora_B matrices to put a posterior on)");
        var heads = headModules.Select(path => new ProbedHeadLayer(path, Head(path))).ToList();
        foreach (var (path, probe) in layers) installs.Add((path, probe, probe.Original));
        foreach (var head in heads) installs.Add((head.Matrix.Name, head, head.Original));
        Matrices = layers.SelectMany(l => l.Probe.Matrices).Concat(heads.Select(h => h.Matrix)).ToList();
        recorded = Matrices;
        Attach();
    }

    /// <summary>Whether the probed layers are in the model now.</summary>
    public bool IsAttached { get; private set; }

    /// <summary>
    /// Puts the probed layers into the model and freezes every parameter (no-op when attached). Between
    /// <see cref="Detach"/> and this call the model is exactly the original (adapter saving sees its LoRA layers).
    /// </summary>
    public void Attach()
    {
        if (IsAttached) return;
        flags.Clear();
        foreach (var (_, p) in model.NamedParameters()) flags.Add((p, p.RequiresGrad));
        foreach (var (path, probe, _) in installs) model.ReplaceModule(path, probe);
        foreach (var (p, _) in flags) p.RequiresGrad = false;
        IsAttached = true;
    }

    /// <summary>Puts the original layers and trainable flags back (no-op when detached); <see cref="Attach"/> re-installs.</summary>
    public void Detach()
    {
        if (!IsAttached) return;
        for (int i = installs.Count - 1; i >= 0; i--) model.ReplaceModule(installs[i].Path, installs[i].Original);
        foreach (var (p, requiresGrad) in flags) p.RequiresGrad = requiresGrad;
        IsAttached = false;
    }

    private Linear Head(string path)
    {
        Module module;
        try { module = model.GetModule(path); }
        catch (KeyNotFoundException e) { throw new ArgumentException($"Laplace-LoRA: head module '{path}' does not exist in the model", nameof(path), e); }
        if (module is not Linear linear || linear.Weight.DType != DType.Float32)
            throw new ArgumentException($"Laplace-LoRA: head module '{path}' is a {module.GetType().Name}; a head posterior needs a Linear with a float32 weight", nameof(path));
        return linear;
    }

    /// <summary>The probed LoRA matrices, then the heads in module order (A before B within a layer).</summary>
    public IReadOnlyList<ProbedMatrix> Matrices { get; }

    /// <summary>
    /// The matrices <see cref="Run"/> records and captures (default: all of <see cref="Matrices"/>). A posterior over a
    /// subset (last layer) records only those, so the other layers run their plain product and, with every parameter
    /// frozen, the backward pass stops at the first recorded one.
    /// </summary>
    public IReadOnlyList<ProbedMatrix> Recorded
    {
        get => recorded;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Count == 0 || value.Any(m => !Matrices.Contains(m))) throw new ArgumentException("Laplace-LoRA: the recorded matrices must be a non-empty subset of the probed ones", nameof(value));
            recorded = value;
        }
    }

    /// <summary>
    /// Forward <paramref name="input"/> through <paramref name="logitsFunction"/> (must give [B, C]), then backward with
    /// the seed ∂L/∂logits from <paramref name="makeSeed"/> (given the float logits, B, C); afterwards every
    /// <see cref="Recorded"/> matrix holds its inputs and output gradients (see <see cref="ProbedMatrix.Capture"/>),
    /// without the padding positions of <paramref name="positionMask"/> (B×T, 1 = real token; null = none). Returns the
    /// logits (B×C).
    /// </summary>
    public float[] Run(Func<Tensor, Tensor> logitsFunction, Tensor input, int expectedBatch, Func<float[], int, int, float[]> makeSeed, out int classes,
        int[]? positionMask = null)
    {
        if (!IsAttached) throw new InvalidOperationException("Laplace-LoRA: the probed layers are detached from the model (attach them first)");
        if (positionMask is not null && (positionMask.Length == 0 || positionMask.Length % expectedBatch != 0))
            throw new ArgumentException($"Laplace-LoRA: the position mask has {positionMask.Length} values, not batch ({expectedBatch}) × positions", nameof(positionMask));
        using var scope = TensorScope.Begin();
        foreach (var m in recorded) { m.Clear(); m.Recording = true; }
        try
        {
            Tensor logits;
            using (LaplacePhaseTimer.Measure(LaplacePhase.Forward)) logits = logitsFunction(input);
            if (logits.Rank != 2 || logits.Size(0) != expectedBatch)
                throw new ArgumentException($"Laplace-LoRA: the logits function returned {logits.ShapeString}; expected [batch = {expectedBatch}, classes]");
            classes = logits.Size(1);
            var values = logits.ToArray();
            var seed = makeSeed(values, expectedBatch, classes);
            using (LaplacePhaseTimer.Measure(LaplacePhase.Backward)) logits.Backward(Tensor.From(seed, expectedBatch, classes));
            using (LaplacePhaseTimer.Measure(LaplacePhase.Capture))
            {
                for (int k = 0; k < recorded.Count; k++)
                {
                    // q_proj's and v_proj's lora_A read the same hidden states: their input rows are copied once.
                    ProbedMatrix? sameInputs = null;
                    for (int j = 0; j < k && sameInputs is null; j++) sameInputs = recorded[k].ReadsSameInputsAs(recorded[j]) ? recorded[j] : null;
                    recorded[k].Capture(expectedBatch, positionMask, sameInputs);
                }
            }
            return values;
        }
        finally
        {
            foreach (var m in recorded) { m.Recording = false; m.Clear(); }
        }
    }

    public void Dispose() => Detach();
}
