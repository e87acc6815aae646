using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Bayesian.LaplaceLora;

using LaplaceLora = Microsoft.ML.Peft.Bayesian.LaplaceLora;

[TestClass]
public sealed class LaplaceLoraHeadTests
{
    /// <summary>
    /// LoRA on fc1 and a head posterior on the plain fc2 ([W | b], input rows with a trailing 1). With one example the
    /// head's K-FAC block is exact: P = g gᵀ ⊗ [x;1][x;1]ᵀ + λI, compared with the brute-force gradient of W and b.
    /// </summary>
    [TestMethod]
    public void HeadBlockWithOneExample_EqualsExactFisherOfWeightAndBias()
    {
        var model = new TinyMlp(new Generator(60), 5, 6, 3);
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "fc1" }, Rank = 2, Alpha = 4, InitLoraWeights = LoraInit.Random }, generator: new Generator(61));
        model.Eval();
        var head = (Linear)model.GetModule("fc2");
        var x = Tensor.Randn(new Generator(62), 1, 5);
        const int label = 1;
        var p = BruteForce.Probabilities(model.Forward, x, 0);
        double[] gradient;
        head.SetRequiresGrad(true);
        using (TensorScope.Begin())
        {
            var logits = model.Forward(x);
            logits.Backward(Tensor.From(p.Select((v, c) => (float)(v - (c == label ? 1 : 0))).ToArray(), 1, 3));
            var gw = head.Weight.Grad!.ToArray();
            var gb = head.Bias!.Grad!.ToArray();
            gradient = new double[3 * 7];
            for (int o = 0; o < 3; o++)
            {
                for (int i = 0; i < 6; i++) gradient[o * 7 + i] = gw[o * 6 + i];
                gradient[o * 7 + 6] = gb[o];
            }
        }
        head.SetRequiresGrad(false);
        head.Weight.ZeroGrad();
        head.Bias!.ZeroGrad();

        using var laplace = LaplaceLora.Fit(peft, model.Forward, [new LaplaceBatch(x, [label])],
            new LaplaceLoraOptions { Fisher = FisherKind.Empirical, HeadModules = ["fc2"], PriorPrecision = 0.9 });
        CollectionAssert.AreEqual(new[] { "fc1.lora_A.default", "fc1.lora_B.default", "fc2" }, laplace.Blocks.Select(b => b.Name).ToArray());
        var block = (KfacLaplaceLayer)laplace.Blocks[2];
        Assert.AreEqual(21, block.ParameterCount);
        var w = head.Weight.ToArray();
        var b = head.Bias.ToArray();
        for (int o = 0; o < 3; o++)
        {
            for (int i = 0; i < 6; i++) Assert.AreEqual(w[o * 6 + i], block.Mean[o * 7 + i], 0.0);
            Assert.AreEqual(b[o], block.Mean[o * 7 + 6], 0.0);
        }
        var v = Enumerable.Range(0, 21).Select(i => Math.Sin(i + 1)).ToArray();
        var pv = new double[21];
        block.PrecisionTimes(v, pv);
        double gv = gradient.Zip(v, (a, c) => a * c).Sum();
        for (int i = 0; i < 21; i++) Assert.AreEqual(gradient[i] * gv + 0.9 * v[i], pv[i], 1e-6 * (1 + Math.Abs(pv[i])), $"P·v[{i}]");
        var full = new FullLaplace("fc2", block.Mean, BruteForce.Outer(gradient, gradient), 1);
        Assert.AreEqual(full.SpectrumTerms(0.9).LogDeterminant, block.LogDetPosteriorPrecision(), 1e-6);

        // Weight sampling writes W and b and restores both.
        laplace.PredictBySampling(x, 3, 1);
        CollectionAssert.AreEqual(w, head.Weight.ToArray());
        CollectionAssert.AreEqual(b, head.Bias.ToArray());
    }

    [TestMethod]
    public void HeadThatIsNotALinear_IsAClearError()
    {
        var (model, peft) = TinyMlp.WithLora(seed: 63);
        var batch = new LaplaceBatch(Tensor.Randn(new Generator(1), 2, 5), [0, 1]);
        var e = Assert.ThrowsExactly<ArgumentException>(() => LaplaceLora.Fit(peft, model.Forward, [batch], new LaplaceLoraOptions { HeadModules = ["fc2"] }));
        StringAssert.Contains(e.Message, "'fc2' is a LoraLinear");
        Assert.ThrowsExactly<ArgumentException>(() => LaplaceLora.Fit(peft, model.Forward, [batch], new LaplaceLoraOptions { HeadModules = ["nope"] }));
        Assert.IsInstanceOfType<LoraLinear>(model.GetModule("fc1"), "nothing replaced after a failed start");
    }
}
