using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Lora;

/// <summary>
/// LoRA+ (Hayou et al. 2024): train B with a learning rate λ times that of A (PEFT's
/// <c>peft.optimizers.create_loraplus_optimizer</c>, λ = loraplus_lr_ratio, 16 in PEFT's documentation). It is an
/// optimizer setting, not an adapter format: the saved adapter is plain LoRA.
/// </summary>
/// <remarks>
/// Grouping, as PEFT: every trainable parameter whose name contains "lora_B", and every trainable 1-D parameter
/// (biases, norm weights, DoRA magnitudes, VeRA's λ vectors), gets λ·lr; of those, biases and parameters of
/// LayerNorm/RMSNorm modules get no weight decay (transformers' decay-parameter rule); everything else (lora_A,
/// MoSLoRA mixers, AdaLoRA's E [r, 1], 2-D weights of modules_to_save heads) keeps lr. PEFT's fourth group,
/// LoRA on embeddings at loraplus_lr_embedding, is always empty here because this library has no LoRA embedding
/// layer. Groups carry a learning-rate multiplier, so any schedule scales all of them together, as a PyTorch
/// scheduler scales every group's lr.
/// </remarks>
public static class LoraPlus
{
    /// <summary>The ratio PEFT's documentation uses.</summary>
    public const double DefaultLrRatio = 16;

    /// <summary>
    /// Parameter groups for an optimizer over <paramref name="model"/>'s trainable parameters: [A-like (×1),
    /// B-like (×λ), B-like without weight decay (×λ, decay 0)], empty groups left out.
    /// </summary>
    public static IReadOnlyList<ParameterGroup> CreateParameterGroups(PeftModel model, double loraPlusLrRatio = DefaultLrRatio)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!(loraPlusLrRatio > 0) || !double.IsFinite(loraPlusLrRatio))
            throw new ArgumentOutOfRangeException(nameof(loraPlusLrRatio), $"loraplus_lr_ratio must be a positive number, got {loraPlusLrRatio}");
        var normParameters = NormParameterNames(model.Model);
        var groupA = new List<Tensor>();
        var groupB = new List<Tensor>();
        var groupBNoDecay = new List<Tensor>();
        foreach (var (name, parameter) in model.TrainableParameters())
        {
            if (name.Contains("lora_B", StringComparison.Ordinal) || parameter.Rank == 1)
            {
                bool decays = !name.Contains("bias", StringComparison.Ordinal) && !normParameters.Contains(name);
                (decays ? groupB : groupBNoDecay).Add(parameter);
            }
            else
            {
                groupA.Add(parameter);
            }
        }
        var groups = new List<ParameterGroup>();
        if (groupA.Count > 0) groups.Add(new ParameterGroup(groupA));
        if (groupB.Count > 0) groups.Add(new ParameterGroup(groupB, learningRateScale: loraPlusLrRatio));
        if (groupBNoDecay.Count > 0) groups.Add(new ParameterGroup(groupBNoDecay, weightDecay: 0, learningRateScale: loraPlusLrRatio));
        return groups;
    }

    /// <summary>Dotted names of parameters owned by LayerNorm / RMSNorm modules (transformers' ALL_LAYERNORM_LAYERS).</summary>
    private static HashSet<string> NormParameterNames(Module model)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (path, module) in model.NamedModules())
        {
            if (module is not (LayerNorm or RMSNorm)) continue;
            foreach (var (name, _) in module.NamedParameters()) names.Add(path.Length == 0 ? name : path + "." + name);
        }
        return names;
    }
}
