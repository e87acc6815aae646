using System.Reflection;
using Microsoft.ML.AutoML;
using Microsoft.ML.SearchSpace;

namespace Microsoft.ML.Peft.AutoML;

/// <summary>
/// Sweepable LoRA text classifiers for ML.NET AutoML: each trial trains a copy of a template
/// <see cref="LoraTextClassificationTrainer.Options"/> with the proposed <see cref="LoraSweepParameters"/>.
/// </summary>
public static class LoraSweepCatalog
{
    /// <summary>
    /// A sweepable multiclass LoRA trainer (label Key&lt;UInt32&gt;): the template with <c>LoraRank</c>,
    /// <c>LoraAlpha</c> and <c>LearningRate</c> taken from each proposal.
    /// </summary>
    /// <param name="catalog">The AutoML catalog (<c>mlContext.Auto()</c>).</param>
    /// <param name="options">The template; it is copied per trial, never modified. <c>LoraConfig</c> must be null (it would override the swept values).</param>
    /// <param name="searchSpace">The search space (default: the attributes of <see cref="LoraSweepParameters"/>).</param>
    public static SweepableEstimator MulticlassLoraTextClassification(this AutoCatalog catalog, LoraTextClassificationTrainer.Options options,
        SearchSpace<LoraSweepParameters>? searchSpace = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        CheckTemplate(options);
        return catalog.CreateSweepableEstimator<LoraSweepParameters>(
            (context, p) => context.MulticlassClassification.Trainers.LoraTextClassification(Configure(options, p)),
            searchSpace ?? new SearchSpace<LoraSweepParameters>());
    }

    /// <summary>A sweepable binary LoRA trainer (Boolean label); see <see cref="MulticlassLoraTextClassification"/>.</summary>
    public static SweepableEstimator BinaryLoraTextClassification(this AutoCatalog catalog, LoraTextClassificationTrainer.Options options,
        SearchSpace<LoraSweepParameters>? searchSpace = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        CheckTemplate(options);
        return catalog.CreateSweepableEstimator<LoraSweepParameters>(
            (context, p) => context.BinaryClassification.Trainers.LoraTextClassification(Configure(options, p)),
            searchSpace ?? new SearchSpace<LoraSweepParameters>());
    }

    private static void CheckTemplate(LoraTextClassificationTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.LoraConfig is not null)
            throw new ArgumentException("LoraSweep: the template's LoraConfig is set, which would override the swept rank and alpha; leave it null and set TargetModules/LoraDropout instead", nameof(options));
    }

    /// <summary>
    /// A copy of <paramref name="template"/> (every public settable property, so options added later are carried too)
    /// with the proposal applied, whose progress callback also stops training when the running trial is cancelled.
    /// </summary>
    internal static LoraTextClassificationTrainer.Options Configure(LoraTextClassificationTrainer.Options template, LoraSweepParameters proposal)
    {
        var copy = new LoraTextClassificationTrainer.Options();
        foreach (var property in typeof(LoraTextClassificationTrainer.Options).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.CanRead && property.CanWrite) property.SetValue(copy, property.GetValue(template));
        }
        copy.LoraRank = proposal.Rank;
        copy.LoraAlpha = proposal.Alpha;
        copy.LearningRate = proposal.LearningRate;
        var token = TrialCancellation.Current;
        if (token.CanBeCanceled) copy.Progress = new CancellingProgress(token, template.Progress);
        return copy;
    }

    /// <summary>Throws at the next training event once the trial is cancelled (the loop calls it after every step).</summary>
    private sealed class CancellingProgress(CancellationToken token, IProgress<TrainingProgress>? inner) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            token.ThrowIfCancellationRequested();
            inner?.Report(value);
        }
    }
}

/// <summary>
/// The cancellation token of the trial being built and fitted by <see cref="LoraEvidenceTrialRunner"/>: sweepable
/// estimators are built inside the runner, so the token reaches the trainer's options without a public hook.
/// </summary>
internal static class TrialCancellation
{
    private static readonly AsyncLocal<CancellationToken> current = new();

    public static CancellationToken Current => current.Value;

    public static Scope Enter(CancellationToken token)
    {
        var previous = current.Value;
        current.Value = token;
        return new Scope(previous);
    }

    internal readonly struct Scope(CancellationToken previous) : IDisposable
    {
        public void Dispose() => current.Value = previous;
    }
}
