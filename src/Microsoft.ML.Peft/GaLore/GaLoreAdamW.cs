using System.Runtime.CompilerServices;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Quantization;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.GaLore;

/// <summary>
/// AdamW whose state for chosen weight matrices lives in a low-rank projection of their gradients (GaLore, Zhao et
/// al. 2024): full-parameter training with the optimizer memory of a rank-r method. For a projected m×n weight W
/// with projector P (refreshed from the current gradient's SVD every T steps, see <see cref="GaLoreProjector"/>):
/// <code>
/// R = project(G);  m ← β₁m + (1−β₁)R;  v ← β₂v + (1−β₂)R²;  N = (lr/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + ε)
/// W ← W·(1 − lr·wd) − α·projectBack(N)
/// </code>
/// Adam runs in <see cref="AdamW"/>'s exact float32 operation order (torch.optim.AdamW's), so with the identity
/// projector (r ≥ min(m, n)) and α = 1 the result is bit-identical to <see cref="AdamW"/>; parameters that are not
/// projected (biases, norms, embeddings) get plain AdamW. galore_torch's own GaLoreAdamW uses transformers' AdamW
/// arithmetic instead (ε not bias-corrected, decay applied after the update), which differs at the ε level.
/// As in galore_torch, the moments are kept (not rotated) when the projector is refreshed.
/// </summary>
public sealed class GaLoreAdamW : Optimizer
{
    /// <summary>Moments of parameters smaller than this stay fp32 with <see cref="GaLoreOptions.EightBitState"/> (bitsandbytes' min_8bit_size).</summary>
    public const int MinEightBitSize = 4096;

    private const int QuantizationBlock = 256;

    private readonly ConditionalWeakTable<Tensor, State> states = [];
    private readonly HashSet<Tensor> projected = new(ReferenceEqualityComparer.Instance);
    private readonly BlockwiseDynamicQuantizer signed = BlockwiseDynamicQuantizer.Signed(QuantizationBlock);
    private readonly BlockwiseDynamicQuantizer unsigned = BlockwiseDynamicQuantizer.Unsigned(QuantizationBlock);

    /// <summary>
    /// GaLore over <paramref name="projectedParameters"/> (2-D weights, [out, in]) and plain AdamW over
    /// <paramref name="otherParameters"/>, sharing one learning rate (and schedule).
    /// </summary>
    public GaLoreAdamW(IEnumerable<Tensor> projectedParameters, IEnumerable<Tensor> otherParameters, GaLoreOptions? options = null,
        double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01)
        : this(MakeGroups(projectedParameters, otherParameters), projectedParameters, options, learningRate, beta1, beta2, eps, weightDecay)
    {
    }

    /// <summary>
    /// GaLore over the members of <paramref name="groups"/> listed in <paramref name="projectedParameters"/> (2-D
    /// weights, [out, in]) and plain AdamW over the rest, each group with its own weight decay and learning-rate
    /// scale (e.g. a trainer's "decay on matrices only" groups).
    /// </summary>
    /// <exception cref="ArgumentException">A projected parameter is not a matrix or is in no group.</exception>
    public GaLoreAdamW(IEnumerable<ParameterGroup> groups, IEnumerable<Tensor> projectedParameters, GaLoreOptions? options = null,
        double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01)
        : base(groups, learningRate, weightDecay)
    {
        ArgumentNullException.ThrowIfNull(projectedParameters);
        Options = options ?? new GaLoreOptions();
        Options.Validate();
        if (beta1 is < 0 or >= 1 || beta2 is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(beta1), "betas must be in [0, 1)");
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        var all = new HashSet<Tensor>(Parameters, ReferenceEqualityComparer.Instance);
        foreach (var p in projectedParameters)
        {
            if (p.Rank != 2) throw new ArgumentException($"GaLore projects matrices only; parameter {p} has rank {p.Rank}", nameof(projectedParameters));
            if (!all.Contains(p)) throw new ArgumentException($"the projected parameter {p} is in none of the optimizer's groups", nameof(projectedParameters));
            projected.Add(p);
        }
    }

    /// <summary>The GaLore settings.</summary>
    public GaLoreOptions Options { get; }

    /// <summary>First-moment decay.</summary>
    public double Beta1 { get; }

    /// <summary>Second-moment decay.</summary>
    public double Beta2 { get; }

    /// <summary>Denominator epsilon.</summary>
    public double Eps { get; }

    /// <summary>Bytes held by the Adam moments created so far (the memory GaLore saves), excluding projectors.</summary>
    public long StateBytes { get; private set; }

    /// <summary>Bytes held by the projector bases created so far (r × short side floats per projected weight).</summary>
    public long ProjectorBytes { get; private set; }

    /// <summary>
    /// GaLore for a model's full fine-tuning, galore_torch's recipe: every trainable 2-D weight of a linear layer
    /// whose dotted name contains one of <paramref name="targetNameParts"/> (default: all linear weights) is
    /// projected; every other trainable parameter gets AdamW.
    /// </summary>
    public static GaLoreAdamW ForModel(Module model, GaLoreOptions? options = null, IReadOnlyList<string>? targetNameParts = null,
        double learningRate = 1e-3, double weightDecay = 0.01)
    {
        ArgumentNullException.ThrowIfNull(model);
        var selected = ProjectedWeights(model, targetNameParts);
        var linearWeights = new HashSet<Tensor>(selected, ReferenceEqualityComparer.Instance);
        var trainable = model.Parameters(trainableOnly: true).ToList();
        return new GaLoreAdamW(selected, trainable.Where(p => !linearWeights.Contains(p)), options, learningRate, weightDecay: weightDecay);
    }

    /// <summary>
    /// The weights <see cref="ForModel"/> projects: every trainable 2-D weight of a linear layer whose dotted name
    /// contains one of <paramref name="targetNameParts"/> (default: all linear layers), in parameter order.
    /// </summary>
    /// <exception cref="ArgumentException">No trainable linear weight matches (the message lists the linear layers).</exception>
    public static IReadOnlyList<Tensor> ProjectedWeights(Module model, IReadOnlyList<string>? targetNameParts = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var linearWeights = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var (name, module) in model.NamedModules())
        {
            if (module is not LinearLayer) continue;
            if (targetNameParts is not null && !targetNameParts.Any(part => name.Contains(part, StringComparison.Ordinal))) continue;
            foreach (var (parameterName, parameter) in module.NamedParameters())
            {
                if (parameterName == "weight" && parameter.Rank == 2) linearWeights.Add(parameter);
            }
        }
        var selected = model.Parameters(trainableOnly: true).Where(linearWeights.Contains).ToList();
        if (selected.Count == 0)
            throw new ArgumentException($"GaLore found no trainable linear weight to project{(targetNameParts is null ? "" : $" among modules named like [{string.Join(", ", targetNameParts)}]")}; available linear layers: {string.Join(", ", model.NamedModules().Where(m => m.Module is LinearLayer).Select(m => m.Name))}", nameof(targetNameParts));
        return selected;
    }

    /// <summary>The projector currently used for <paramref name="parameter"/>, or null before its first step or when it is not projected.</summary>
    public GaLoreProjector? ProjectorOf(Tensor parameter) => states.TryGetValue(parameter, out var s) ? s.Projector : null;

    private static ParameterGroup[] MakeGroups(IEnumerable<Tensor> projectedParameters, IEnumerable<Tensor> otherParameters)
    {
        ArgumentNullException.ThrowIfNull(projectedParameters);
        ArgumentNullException.ThrowIfNull(otherParameters);
        return [new ParameterGroup(projectedParameters), new ParameterGroup(otherParameters)];
    }

    private protected override void Update(Tensor parameter, Tensor grad, double learningRate, double weightDecay)
    {
        var g = grad.IsContiguous ? grad.AsReadOnlySpan<float>() : grad.Contiguous().AsReadOnlySpan<float>();
        var p = parameter.AsSpan<float>();
        var s = states.GetValue(parameter, _ => new State());
        bool isProjected = projected.Contains(parameter);
        if (isProjected && s.Step % Options.UpdateProjectionGap == 0)
        {
            var shape = parameter.ShapeArray();
            s.Projector = GaLoreProjector.FromGradient(g, shape[0], shape[1], Options.Rank, Options.Svd, Options.Seed + s.Step, $"gradient of {parameter}");
            if (s.Update is null) ProjectorBytes += (long)(s.Projector.IsIdentity ? 0 : s.Projector.Rank * Math.Min(shape[0], shape[1])) * sizeof(float);
        }
        int n = isProjected ? s.Projector!.ProjectedCount : p.Length;
        if (s.Update is null) Allocate(s, n);
        s.Step++;

        ReadOnlySpan<float> adamInput = g;
        if (isProjected)
        {
            s.Projector!.Project(g, s.ProjectedGradient);
            adamInput = s.ProjectedGradient;
        }
        // Adam on a zero "parameter" leaves exactly −(lr/(1−β₁ᵗ))·m/(√v/√(1−β₂ᵗ)+ε) in it (0·1 + x = x), the
        // update AdamW adds, so the shared kernels give AdamW's bit pattern.
        var constants = new AdamW8BitKernels.StepConstants(learningRate, 0, Beta1, Beta2, Eps, s.Step);
        var update = s.Update.AsSpan(0, n);
        update.Clear();
        ApplyAdam(s, update, adamInput, constants);

        float decay = (float)(1 - learningRate * weightDecay);
        for (int i = 0; i < p.Length; i++) p[i] *= decay;
        if (isProjected)
        {
            s.Projector!.AddProjectedBack(update, (float)Options.Scale, p);
        }
        else
        {
            for (int i = 0; i < p.Length; i++) p[i] += update[i];
        }
    }

    private void Allocate(State s, int n)
    {
        s.Update = new float[n];
        s.ProjectedGradient = new float[n];
        s.EightBit = Options.EightBitState && n >= MinEightBitSize;
        if (s.EightBit)
        {
            int blocks = BlockwiseDynamicQuantizer.BlockCount(n, QuantizationBlock);
            s.MCodes = new byte[n];
            s.VCodes = new byte[n];
            s.MAbsmax = new float[blocks];
            s.VAbsmax = new float[blocks];
            StateBytes += 2L * n + 2L * blocks * sizeof(float);
        }
        else
        {
            s.M = new float[n];
            s.V = new float[n];
            StateBytes += 2L * n * sizeof(float);
        }
    }

    private unsafe void ApplyAdam(State s, Span<float> update, ReadOnlySpan<float> gradient, in AdamW8BitKernels.StepConstants constants)
    {
        if (!s.EightBit)
        {
            AdamW8BitKernels.Update(update, gradient, s.M, s.V, constants);
            return;
        }
        fixed (byte* mc = s.MCodes, vc = s.VCodes)
        fixed (float* ma = s.MAbsmax, va = s.VAbsmax)
        {
            AdamW8BitKernels.UpdateEightBit(update, gradient, mc, ma, vc, va, signed, unsigned, constants);
        }
    }

    /// <summary>Per-parameter state: step count, projector and the Adam moments (fp32 or 8-bit codes with block absmax).</summary>
    private sealed class State
    {
        public int Step;
        public GaLoreProjector? Projector;
        public float[]? Update;
        public float[] ProjectedGradient = [];
        public bool EightBit;
        public float[] M = [];
        public float[] V = [];
        public byte[] MCodes = [];
        public byte[] VCodes = [];
        public float[] MAbsmax = [];
        public float[] VAbsmax = [];
    }
}
