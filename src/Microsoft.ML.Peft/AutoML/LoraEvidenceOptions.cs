using Microsoft.ML.Peft.Bayesian;

namespace Microsoft.ML.Peft.AutoML;

/// <summary>Settings of <see cref="LoraEvidence.Compute"/> and <see cref="LoraEvidenceTrialRunner"/>.</summary>
public sealed record LoraEvidenceOptions
{
    /// <summary>Curvature, Fisher type, seed, low-rank factor settings, temperature of the Laplace fit (default K-FAC, sampled Fisher, seed 0).
    /// Its <c>HeadModules</c> and <c>PriorPrecision</c> are set by <see cref="IncludeHead"/> and <see cref="PriorPrecision"/>.</summary>
    public LaplaceLoraOptions Laplace { get; init; } = new();

    /// <summary>Also put the classification head (the model's modules_to_save, e.g. "score") under the posterior, as
    /// Laplace-LoRA does: the head is trained too, so it belongs in the evidence. Default true.</summary>
    public bool IncludeHead { get; init; } = true;

    /// <summary>A fixed prior precision λ &gt; 0, or null (default) to choose λ by maximising the evidence (scalar).</summary>
    public double? PriorPrecision { get; init; }

    /// <summary>How λ is maximised when <see cref="PriorPrecision"/> is null (default: scalar Newton).</summary>
    public PriorPrecisionOptions PriorTuning { get; init; } = new();

    /// <summary>Rows per Laplace batch (rows of one token length only, so no padding enters the curvature). Default 32.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Also score the validation set with the Laplace probit predictive (costs C extra backward passes per batch). Default false.</summary>
    public bool LaplaceValidation { get; init; }

    /// <summary>
    /// Null (default): <see cref="LoraEvidenceTrialRunner"/> scores each trial by the log marginal likelihood log p(D) of
    /// the model trained on all training rows. A fraction f in (0, 1): it scores the <em>conditional</em> log marginal
    /// likelihood log p(D₂ | D₁) instead (Lotfi et al., "Bayesian model selection, the marginal likelihood, and
    /// generalization", ICML 2022): the trial trains on D₁, a seeded random 1 − f of the training rows, fits the Laplace
    /// posterior there, and sums the log probit predictive of the other f, D₂. The first term of log p(D) pays for
    /// the prior's fit to the first rows, which penalises flexible models that do learn; log p(D₂ | D₁) scores how well the
    /// posterior after D₁ predicts new rows. Still training rows only: the validation set stays out of the loss.
    /// </summary>
    public double? ConditionalFraction { get; init; }

    /// <summary>Seed of the D₁ / D₂ split of <see cref="ConditionalFraction"/> (ML.NET's <c>TrainTestSplit</c>). Default 0.</summary>
    public int ConditionalSplitSeed { get; init; }

    internal void Validate()
    {
        if (PriorPrecision is { } lambda && !(lambda > 0 && double.IsFinite(lambda)))
            throw new ArgumentOutOfRangeException(nameof(PriorPrecision), lambda, "LoraEvidence: the prior precision must be positive and finite");
        if (ConditionalFraction is { } f && !(f > 0 && f < 1))
            throw new ArgumentOutOfRangeException(nameof(ConditionalFraction), f, "LoraEvidence: ConditionalFraction (the share of training rows held out as D₂) must be in (0, 1), or null for the plain evidence");
        if (BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "LoraEvidence: BatchSize must be positive");
        ArgumentNullException.ThrowIfNull(Laplace, nameof(Laplace));
        ArgumentNullException.ThrowIfNull(PriorTuning, nameof(PriorTuning));
    }
}

/// <summary>The Laplace evidence of one trained LoRA classifier and its validation scores.</summary>
public sealed record LoraEvidenceResult
{
    /// <summary>log p(D) ≈ log p(D|θ*) − ½Σ_b[λ_b‖θ*_b‖² − d_b log λ_b + log det P_b] (nats): higher is better.</summary>
    public required double LogMarginalLikelihood { get; init; }

    /// <summary>
    /// log p(D₂ | D₁) ≈ Σ_{(x, y) ∈ D₂} log p(y | x, D₁) (nats) under the Laplace probit predictive fitted on D₁, when
    /// computed by <see cref="LoraEvidence.ComputeConditional"/>; else null. Higher is better.
    /// </summary>
    public double? ConditionalLogMarginalLikelihood { get; init; }

    /// <summary>Held-out training rows |D₂| scored by <see cref="ConditionalLogMarginalLikelihood"/>; null without it.</summary>
    public int? ConditionalExamples { get; init; }

    /// <summary>The prior precision λ the evidence was evaluated at.</summary>
    public required double PriorPrecision { get; init; }

    /// <summary>Whether λ was chosen by maximising the evidence (else it was fixed).</summary>
    public required bool PriorPrecisionTuned { get; init; }

    /// <summary>Σ_n log p(y_n | x_n, θ*) over the training rows (nats): D₁'s for a conditional evidence.</summary>
    public required double TrainLogLikelihood { get; init; }

    /// <summary>Training rows N the posterior was fitted on (|D₁| for a conditional evidence).</summary>
    public required int TrainingExamples { get; init; }

    /// <summary>Parameters under the posterior (LoRA A and B matrices, plus the head when included).</summary>
    public required int PosteriorParameters { get; init; }

    /// <summary>Arg-max accuracy of the MAP model on the validation set, if one was given.</summary>
    public double? ValidationAccuracy { get; init; }

    /// <summary>Mean negative log-likelihood (nats) of the MAP model on the validation set, if one was given.</summary>
    public double? ValidationLogLoss { get; init; }

    /// <summary>Accuracy of the Laplace probit predictive on the validation set (with <see cref="LoraEvidenceOptions.LaplaceValidation"/>).</summary>
    public double? LaplaceValidationAccuracy { get; init; }

    /// <summary>Mean negative log-likelihood (nats) of the Laplace probit predictive on the validation set (with <see cref="LoraEvidenceOptions.LaplaceValidation"/>).</summary>
    public double? LaplaceValidationLogLoss { get; init; }

    /// <summary>Time to fit the posterior and choose λ.</summary>
    public required TimeSpan LaplaceTime { get; init; }
}
