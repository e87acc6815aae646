using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Ensembles;

/// <summary>
/// MC dropout (Gal and Ghahramani 2016), the cheapest ensemble baseline: the same trained model scored several times
/// with its dropout layers (LoRA dropout included) left on, each pass drawing new masks.
/// </summary>
public static class MonteCarloDropout
{
    /// <summary>
    /// Runs <paramref name="logits"/> (the model's forward on a batch, [rows, classes]) <paramref name="samples"/> times
    /// in training mode without gradients and averages the softmax outputs. The model's mode is restored afterwards.
    /// </summary>
    public static EnsemblePrediction Predict(Module model, Func<Tensor> logits, int samples)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentOutOfRangeException.ThrowIfLessThan(samples, 1);
        bool wasTraining = model.IsTraining;
        var members = new List<float[]>(samples);
        int classes = 0;
        try
        {
            model.Train();
            using (Autograd.NoGrad())
            {
                for (int s = 0; s < samples; s++)
                {
                    var output = logits();
                    classes = output.ShapeArray()[^1];
                    members.Add(output.Softmax().ToArray());
                }
            }
        }
        finally
        {
            model.Train(wasTraining);
        }
        return EnsemblePrediction.FromMemberProbabilities(members, classes);
    }
}
