using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Lora;

/// <summary>
/// DoRA's cached weight norm: computed once while W, A, B stay the same, recomputed after every kind of change
/// (in-place writes, optimizer steps, merges), and always equal to ‖W + s·B·A‖ computed by hand in double.
/// </summary>
[TestClass]
public sealed class DoraNormCacheTests
{
    private static (LoraLinear Layer, DoraMagnitude Magnitude) Layer(ulong seed = 4)
    {
        var g = new Generator(seed);
        var layer = new LoraLinear(new Linear(6, 5, g));
        layer.UpdateLayer("default", 3, 6, 0, false, LoraInit.Random, g, useDora: true);
        layer.SetActiveAdapters(["default"], trainable: true);
        return (layer, (DoraMagnitude)layer.GetModule("lora_magnitude_vector.default"));
    }

    /// <summary>‖W + s·B·A‖ per row in double from the layer's current tensors.</summary>
    private static double[] NormByHand(LoraLinear layer)
    {
        var w = ((Linear)layer.Base).Weight.ToArray();
        var a = layer.LoraA("default").ToArray();
        var b = layer.LoraB("default").ToArray();
        double s = layer.Scaling("default");
        int rows = layer.OutFeatures, cols = layer.InFeatures, r = layer.Rank("default");
        var norms = new double[rows];
        for (int i = 0; i < rows; i++)
        {
            double sum = 0;
            for (int j = 0; j < cols; j++)
            {
                double v = w[i * cols + j];
                for (int k = 0; k < r; k++) v += s * b[i * r + k] * a[k * cols + j];
                sum += v * v;
            }
            norms[i] = Math.Sqrt(sum);
        }
        return norms;
    }

    /// <summary>The DoRA output recomputed without the cache: base + (m/‖·‖ − 1)·x·Wᵀ + (m/‖·‖)·s·x·Aᵀ·Bᵀ in double.</summary>
    private static double[] OutputByHand(LoraLinear layer, Tensor input)
    {
        var linear = (Linear)layer.Base;
        var w = linear.Weight.ToArray();
        var bias = linear.Bias!.ToArray();
        var a = layer.LoraA("default").ToArray();
        var b = layer.LoraB("default").ToArray();
        var m = layer.Magnitude("default").ToArray();
        var x = input.ToArray();
        var norms = NormByHand(layer);
        double s = layer.Scaling("default");
        int rows = input.Size(0), outF = layer.OutFeatures, inF = layer.InFeatures, r = layer.Rank("default");
        var y = new double[rows * outF];
        for (int n = 0; n < rows; n++)
        {
            for (int o = 0; o < outF; o++)
            {
                double adapted = 0;
                for (int j = 0; j < inF; j++)
                {
                    double v = w[o * inF + j];
                    for (int k = 0; k < r; k++) v += s * b[o * r + k] * a[k * inF + j];
                    adapted += v * x[n * inF + j];
                }
                y[n * outF + o] = bias[o] + m[o] / norms[o] * adapted;
            }
        }
        return y;
    }

    private static void AssertOutput(LoraLinear layer, Tensor input, string what)
    {
        var expected = OutputByHand(layer, input);
        var actual = layer.Forward(input).ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.AreEqual(expected[i], actual[i], 2e-5, $"{what}: output[{i}]");
    }

    [TestMethod]
    public void WeightNorm_EqualsTheRowNormComputedInDouble()
    {
        var (layer, _) = Layer();
        var norm = DoraMagnitude.WeightNorm(((Linear)layer.Base).Weight, layer.LoraA("default"), layer.LoraB("default"), layer.Scaling("default")).ToArray();
        var expected = NormByHand(layer);
        for (int i = 0; i < expected.Length; i++) Assert.AreEqual(expected[i], norm[i], 1e-5 * expected[i], $"row {i}");
    }

    [TestMethod]
    public void Inference_ComputesTheNormOnce_AndGivesTheSameOutputEveryTime()
    {
        var (layer, magnitude) = Layer();
        layer.Eval();
        var x = Tensor.Randn(new Generator(9), 4, 6);
        using (Autograd.NoGrad())
        {
            var first = layer.Forward(x).ToArray();
            for (int i = 0; i < 3; i++) CollectionAssert.AreEqual(first, layer.Forward(x).ToArray(), $"forward {i + 2}");
        }
        Assert.AreEqual(1, magnitude.NormComputations);
        AssertOutput(layer, x, "after cached forwards");
    }

    [TestMethod]
    public void InPlaceChangesOfWAOrB_InvalidateTheNorm()
    {
        var (layer, magnitude) = Layer();
        var x = Tensor.Randn(new Generator(9), 4, 6);
        layer.Forward(x);
        int computed = magnitude.NormComputations;
        using (Autograd.NoGrad()) layer.LoraB("default").Mul_(1.5f);
        AssertOutput(layer, x, "after B changed");
        Assert.AreEqual(++computed, magnitude.NormComputations);
        using (Autograd.NoGrad()) layer.LoraA("default").CopyFrom_(Tensor.Randn(new Generator(2), 3, 6));
        AssertOutput(layer, x, "after A changed");
        Assert.AreEqual(++computed, magnitude.NormComputations);
        using (Autograd.NoGrad()) ((Linear)layer.Base).Weight.Add_(Tensor.Full(0.25f, 5, 6));
        AssertOutput(layer, x, "after W changed");
        Assert.AreEqual(++computed, magnitude.NormComputations);
        // Changing m alone leaves the norm valid (the norm does not depend on it) but changes the output.
        using (Autograd.NoGrad()) layer.Magnitude("default").Mul_(2f);
        AssertOutput(layer, x, "after m changed");
        Assert.AreEqual(computed, magnitude.NormComputations);
    }

    [TestMethod]
    public void ReplacedBaseWeight_AndMergeUnmerge_InvalidateTheNorm()
    {
        var (layer, magnitude) = Layer();
        var x = Tensor.Randn(new Generator(9), 4, 6);
        layer.Forward(x);
        ((Linear)layer.Base).ReplaceParameter("weight", Tensor.Randn(new Generator(11), 5, 6));
        AssertOutput(layer, x, "after the base weight was replaced");
        Assert.AreEqual(2, magnitude.NormComputations);
        layer.Merge();
        layer.Unmerge();
        AssertOutput(layer, x, "after merge and unmerge");
        Assert.AreEqual(3, magnitude.NormComputations);
    }

    [TestMethod]
    public void Training_RecomputesAfterEachOptimizerStep_AndReusesWithinAnAccumulatedStep()
    {
        var (layer, magnitude) = Layer();
        var x = Tensor.Randn(new Generator(9), 4, 6);
        var optimizer = new AdamW(layer.Parameters(trainableOnly: true), learningRate: 0.05);
        for (int step = 0; step < 3; step++)
        {
            // Two micro-batches before one optimizer step: the second reuses the norm, the step invalidates it.
            layer.Forward(x).Mul(layer.Forward(x)).Sum().Backward();
            layer.Forward(x).Sum().Backward();
            Assert.AreEqual(step + 1, magnitude.NormComputations, $"step {step}");
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        AssertOutput(layer, x, "after three steps");
    }
}
