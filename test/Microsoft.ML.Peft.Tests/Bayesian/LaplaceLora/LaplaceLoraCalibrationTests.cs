using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.Calibration;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Bayesian.LaplaceLora;

using LaplaceLora = Microsoft.ML.Peft.Bayesian.LaplaceLora;

[TestClass]
public sealed class LaplaceLoraCalibrationTests
{
    /// <summary>
    /// A LoRA-tuned MLP overfits 60 noisy examples (25% labels flipped) until it is overconfident; the Laplace-LoRA
    /// probit predictive, with λ tuned by the evidence and separately by validation NLL, must have lower ECE and NLL on
    /// held-out data than the MAP softmax.
    /// </summary>
    [TestMethod]
    public void LaplacePredictive_IsBetterCalibratedThanMap()
    {
        var (model, peft) = TinyMlp.WithLora(seed: 40, inputs: 5, hidden: 16, classes: 3, rank: 4);
        var teacher = Tensor.Randn(new Generator(41), 5, 3).ToArray();
        (Tensor X, int[] Y) Data(ulong seed, int count)
        {
            var x = Tensor.Randn(new Generator(seed), count, 5);
            var values = x.ToArray();
            var flip = new Random((int)seed);
            var y = new int[count];
            for (int n = 0; n < count; n++)
            {
                int best = 0;
                double bestScore = double.NegativeInfinity;
                for (int c = 0; c < 3; c++)
                {
                    double s = 0;
                    for (int i = 0; i < 5; i++) s += values[n * 5 + i] * teacher[i * 3 + c];
                    if (s > bestScore) { bestScore = s; best = c; }
                }
                y[n] = flip.NextDouble() < 0.25 ? flip.Next(3) : best;
            }
            return (x, y);
        }
        var (xTrain, yTrain) = Data(42, 60);
        var (xValid, yValid) = Data(43, 100);
        var (xTest, yTest) = Data(44, 600);

        var optimizer = new AdamW(peft.TrainableParameters().Select(p => p.Parameter), learningRate: 0.05);
        var targets = Tensor.FromInt32(yTrain, 60);
        for (int step = 0; step < 300; step++)
        {
            using var scope = TensorScope.Begin();
            var loss = model.Forward(xTrain).CrossEntropy(targets);
            loss.Backward();
            optimizer.Step();
            optimizer.ZeroGrad();
        }

        double[] mapProbabilities;
        using (TensorScope.Begin())
        using (Autograd.NoGrad()) mapProbabilities = Softmax(model.Forward(xTest).ToArray(), 3);
        double mapEce = CalibrationMetrics.ExpectedCalibrationError(mapProbabilities, 3, yTest);
        double mapNll = CalibrationMetrics.NegativeLogLikelihood(mapProbabilities, 3, yTest);

        using var laplace = LaplaceLora.Fit(peft, model.Forward, [new LaplaceBatch(xTrain, yTrain)], new LaplaceLoraOptions { Seed = 7 });
        double evidenceBefore = laplace.LogMarginalLikelihood();
        double lambdaEvidence = laplace.OptimizePriorPrecision()[0];
        Assert.IsTrue(laplace.LogMarginalLikelihood() >= evidenceBefore, "evidence maximisation cannot lower the evidence");
        var evidenceProbabilities = laplace.PredictProbit(xTest);
        double lambdaValidation = laplace.TunePriorPrecisionByValidation([new LaplaceBatch(xValid, yValid)]);
        var validationProbabilities = laplace.PredictProbit(xTest);

        double eceEvidence = CalibrationMetrics.ExpectedCalibrationError(evidenceProbabilities, 3, yTest);
        double eceValidation = CalibrationMetrics.ExpectedCalibrationError(validationProbabilities, 3, yTest);
        double nllEvidence = CalibrationMetrics.NegativeLogLikelihood(evidenceProbabilities, 3, yTest);
        double nllValidation = CalibrationMetrics.NegativeLogLikelihood(validationProbabilities, 3, yTest);
        Console.WriteLine($"MAP: ECE {mapEce:F4}, NLL {mapNll:F4}");
        Console.WriteLine($"Laplace, evidence λ = {lambdaEvidence:G4}: ECE {eceEvidence:F4}, NLL {nllEvidence:F4}");
        Console.WriteLine($"Laplace, validation λ = {lambdaValidation:G4}: ECE {eceValidation:F4}, NLL {nllValidation:F4}");
        Assert.IsTrue(eceEvidence < mapEce, $"evidence-tuned Laplace ECE {eceEvidence} vs MAP {mapEce}");
        Assert.IsTrue(eceValidation < mapEce, $"validation-tuned Laplace ECE {eceValidation} vs MAP {mapEce}");
        Assert.IsTrue(nllValidation < mapNll, $"validation-tuned Laplace NLL {nllValidation} vs MAP {mapNll}");
    }

    private static double[] Softmax(float[] logits, int classes)
    {
        var p = new double[logits.Length];
        for (int n = 0; n < logits.Length / classes; n++)
        {
            double max = double.NegativeInfinity, total = 0;
            for (int c = 0; c < classes; c++) max = Math.Max(max, logits[n * classes + c]);
            for (int c = 0; c < classes; c++) total += p[n * classes + c] = Math.Exp(logits[n * classes + c] - max);
            for (int c = 0; c < classes; c++) p[n * classes + c] /= total;
        }
        return p;
    }
}
