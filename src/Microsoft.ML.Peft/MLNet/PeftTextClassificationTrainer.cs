using Microsoft.ML.Data;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft;

/// <summary>
/// Fine-tunes a pretrained transformer for text classification with any PEFT method, as an ML.NET estimator: the
/// method is the <see cref="Options.PeftConfig"/> — LoRA (<see cref="Lora.LoraConfig"/>), (IA)³
/// (<see cref="IA3.IA3Config"/>), the selective methods (<see cref="Selective.SelectiveConfig"/>: BitFit, LayerNorm
/// tuning, head-only, last-N-layers, full fine-tuning) or any other <see cref="PeftConfig"/>. Switching methods changes
/// the config, not the pipeline. Create it through
/// <c>mlContext.MulticlassClassification.Trainers.PeftTextClassification(options)</c> or
/// <c>mlContext.BinaryClassification.Trainers.PeftTextClassification(options)</c>.
/// </summary>
/// <remarks>
/// Columns, outputs, checks, determinism and checkpoints are those of <see cref="LoraTextClassificationTrainer"/>, which
/// is this trainer with a LoRA config (both run the same code). The config's unset task_type,
/// base_model_name_or_path and unset or empty modules_to_save are filled in on a copy (SEQ_CLS, the base model, the classification
/// head). A method whose targets match no module of the model fails at <see cref="Fit"/>, before training, naming the
/// method and listing the model's modules.
/// </remarks>
public sealed class PeftTextClassificationTrainer : IEstimator<PeftTextClassificationTransformer>
{
    private readonly TextClassifierTraining training;

    internal PeftTextClassificationTrainer(Options options, ClassificationKind kind, ITextClassifierFactory? factory = null) =>
        training = new TextClassifierTraining(options, kind, factory);

    /// <summary>
    /// The output shape: the input columns plus Score and PredictedLabel (and Probability for binary). Checks the label
    /// and text columns; throws <see cref="ArgumentOutOfRangeException"/> naming a missing or mistyped column.
    /// </summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) => training.GetOutputSchema(inputSchema);

    /// <summary>Trains on <paramref name="input"/> and returns the fitted transformer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type.</exception>
    /// <exception cref="ArgumentException">An option is invalid, the method cannot apply to the model, or the data has no labeled rows.</exception>
    /// <exception cref="TrainingDivergedException">The loss or gradient became NaN or infinite.</exception>
    public PeftTextClassificationTransformer Fit(IDataView input) => PeftTextClassificationTransformer.Create(training.Fit(input));

    /// <summary>Settings of PEFT text classification: the shared options plus the method's configuration.</summary>
    public sealed class Options : TextClassificationTrainerOptions
    {
        /// <summary>
        /// The PEFT method and its settings (e.g. <c>new LoraConfig { ... }</c>, <c>new IA3Config { ... }</c>,
        /// <c>SelectiveConfig.BitFit()</c>, <c>SelectiveConfig.Full()</c>). Required. Not modified: Fit works on a copy.
        /// </summary>
        public PeftConfig? PeftConfig { get; set; }

        internal override void ValidateMethod()
        {
            if (PeftConfig is null)
                throw new ArgumentException("Options.PeftConfig must be set to the PEFT method to train (e.g. new LoraConfig { ... }, SelectiveConfig.BitFit(), SelectiveConfig.Full())", nameof(PeftConfig));
            try
            {
                PeftConfig.Validate();
            }
            catch (PeftConfigException e)
            {
                throw new ArgumentException($"Options.PeftConfig ({PeftConfig.PeftType}) is invalid: {e.Message}", nameof(PeftConfig), e);
            }
        }

        /// <remarks>
        /// As PEFT's <c>_prepare_adapter_config</c> does, a LoRA or IA3 config without target_modules gets PEFT's
        /// default targets for the model type (an error names the model type when there is none).
        /// </remarks>
        internal override PeftConfig CreatePeftConfig(SequenceClassificationModel model)
        {
            ValidateMethod();
            var config = PeftConfig!.Clone();
            string modelType = model.Config.ModelType;
            switch (config)
            {
                case Lora.LoraConfig { TargetModules: null } lora:
                    lora.TargetModules = ModuleSelector.FromNames(Lora.LoraConfig.DefaultTargetModules(modelType)
                        ?? throw new ArgumentException($"there is no default LoRA target for model type '{modelType}'; set LoraConfig.TargetModules", nameof(model)));
                    break;
                case IA3.IA3Config { TargetModules: null } ia3:
                    var (targets, feedForward) = IA3.IA3Config.DefaultModules(modelType)
                        ?? throw new ArgumentException($"there is no default IA3 target for model type '{modelType}'; set IA3Config.TargetModules and FeedForwardModules", nameof(model));
                    ia3.TargetModules = ModuleSelector.FromNames(targets);
                    ia3.FeedForwardModules ??= ModuleSelector.FromNames(feedForward);
                    break;
            }
            return config;
        }
    }
}
