using Microsoft.ML.SearchSpace;

namespace Microsoft.ML.Peft.AutoML;

/// <summary>
/// The LoRA hyper-parameters a sweep varies, as a <see cref="SearchSpace{T}"/> option class (the defaults are
/// PEFT's usual r = 8, alpha = 16 and the quick SST-2 recipe's learning rate). Narrow or replace a dimension the
/// ML.NET way, e.g. <c>ss["Rank"] = new ChoiceOption(2, 8)</c>.
/// </summary>
public sealed class LoraSweepParameters
{
    /// <summary>LoRA rank r.</summary>
    [Choice(new object[] { 1, 2, 4, 8, 16, 32 }, 8)]
    public int Rank { get; set; } = 8;

    /// <summary>LoRA alpha (scaling alpha / r).</summary>
    [Range(1.0, 64.0, 16.0, logBase: true)]
    public double Alpha { get; set; } = 16;

    /// <summary>Peak AdamW learning rate.</summary>
    [Range(1e-5, 1e-1, 2e-3, logBase: true)]
    public double LearningRate { get; set; } = 2e-3;
}

/// <summary>
/// The Laplace prior of a trial, as a search space the runner reads under the experiment key
/// <see cref="LoraEvidenceTrialRunner.PriorSearchSpaceKey"/> (added with
/// <c>experiment.AddSearchSpace("laplace", new SearchSpace&lt;LaplacePriorParameters&gt;())</c>). Without that key the
/// runner uses <see cref="LoraEvidenceOptions.PriorPrecision"/>.
/// </summary>
public sealed class LaplacePriorParameters
{
    /// <summary>True: λ maximises the evidence (<see cref="PriorPrecision"/> is ignored); false: λ = <see cref="PriorPrecision"/>.</summary>
    [BooleanChoice(true)]
    public bool TunePriorPrecision { get; set; } = true;

    /// <summary>The fixed prior precision λ &gt; 0 when <see cref="TunePriorPrecision"/> is false.</summary>
    [Range(1e-3, 1e3, 1.0, logBase: true)]
    public double PriorPrecision { get; set; } = 1;
}
