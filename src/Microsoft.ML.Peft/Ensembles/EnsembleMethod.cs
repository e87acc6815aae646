namespace Microsoft.ML.Peft.Ensembles;

/// <summary>How an ensemble of LoRA adapters is obtained (<see cref="SvgdLoraTextClassificationTrainer"/>).</summary>
public enum EnsembleMethod
{
    /// <summary>n LoRA particles trained jointly by Stein variational gradient descent (<see cref="SvgdKernel"/>).</summary>
    Svgd,

    /// <summary>
    /// n LoRA adapters trained side by side, each on its own gradient (SVGD without the kernel): a deep ensemble whose
    /// members differ in their LoRA initialisation and dropout masks (same batches, same initial head).
    /// </summary>
    DeepEnsemble,

    /// <summary>One LoRA run; the members are its weights at the end of each of the last n epochs.</summary>
    CheckpointEnsemble,

    /// <summary>One LoRA run; the predictive averages n scoring passes with the LoRA dropout layers on.</summary>
    MonteCarloDropout,
}
