using Microsoft.ML.Peft.AdapterTraining;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.AdaLora;

/// <summary>
/// AdaLoRA's training-time behaviour (PEFT's <c>AdaLoraModel.forward</c> loss term and
/// <c>AdaLoraModel.update_and_allocate</c>): the orthogonality regulariser as <see cref="ExtraLoss"/> and the rank
/// allocation after each optimizer step.
/// </summary>
public sealed class AdaLoraTrainingHooks : IAdapterTrainingHooks
{
    private readonly AdaLoraConfig config;
    private readonly string adapterName;
    private readonly List<(string Path, AdaLoraLinear Layer)> layers;

    /// <summary>Hooks for adapter <paramref name="adapterName"/> of <paramref name="model"/> (config with total_step set).</summary>
    public AdaLoraTrainingHooks(PeftModel model, AdaLoraConfig config, string adapterName)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        this.config = config;
        this.adapterName = adapterName;
        layers = model.TunerLayers().Where(t => t.Layer is AdaLoraLinear a && a.AdapterNames.Contains(adapterName))
            .Select(t => (t.Path, (AdaLoraLinear)t.Layer)).ToList();
        Allocator = new RankAllocator(config, adapterName, layers);
    }

    /// <summary>The allocator (budget schedule, importance scores).</summary>
    public RankAllocator Allocator { get; }

    /// <summary>The kept-triplet pattern per layer path after the latest allocation (PEFT's config.rank_pattern), or null.</summary>
    public IReadOnlyDictionary<string, bool[]>? RankPattern { get; private set; }

    /// <inheritdoc/>
    public IReadOnlyList<ParameterGroup> ParameterGroups(PeftModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return [new ParameterGroup(model.TrainableParameters().Select(p => p.Parameter))];
    }

    /// <inheritdoc/>
    public Tensor? ExtraLoss(PeftModel model) =>
        OrthogonalRegularizer.Compute(layers.Select(l => l.Layer), adapterName).Mul((float)config.OrthRegWeight);

    /// <inheritdoc/>
    public void AfterOptimizerStep(PeftModel model, int stepIndex)
    {
        int final = config.TotalStep!.Value - config.TFinal;
        if (stepIndex < final)
        {
            var (_, pattern) = Allocator.UpdateAndAllocate(stepIndex);
            if (pattern is not null) RankPattern = pattern;
        }
        else if (stepIndex == final)
        {
            RankPattern = Allocator.UpdateAndAllocate(stepIndex, forceMask: true).RankPattern;
            Allocator.ResetImportance();
        }
        else if (RankPattern is not null)
        {
            // PEFT keeps pruned triplets at zero by re-masking after every step of the final phase.
            Allocator.MaskUsingRankPattern(RankPattern);
        }
    }
}
