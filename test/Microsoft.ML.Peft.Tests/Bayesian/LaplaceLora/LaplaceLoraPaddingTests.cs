using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Bayesian.LaplaceLora;

using LaplaceLora = Microsoft.ML.Peft.Bayesian.LaplaceLora;

/// <summary>
/// Padding-aware K-FAC on a tiny Llama sequence classifier (LoRA on q_proj and v_proj, right padding, pooled at the last
/// real token): a padded position is not data, so batching examples of different lengths together must give exactly
/// the factors of the examples fitted one at a time without padding, and the per-example gradients behind the diagonal
/// Fisher must be those of each example run alone.
/// </summary>
[TestClass]
public sealed class LaplaceLoraPaddingTests
{
    private static readonly int[][] Rows = [[5, 9, 14], [7, 3, 22, 41, 8], [11, 30], [2, 19, 33, 6]];
    private static readonly int[] Labels = [1, 0, 1, 0];

    private static (SequenceClassificationModel Model, PeftModel Peft) TinyClassifier()
    {
        var config = LlamaConfig.ForModelType("llama") with
        {
            VocabSize = 50, HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2,
            MaxPositionEmbeddings = 32, InitializerRange = 0.3, PadTokenId = null, SlidingWindow = null, NumLabels = 2,
        };
        var model = (SequenceClassificationModel)PretrainedModel.Create(config, ModelTask.SequenceClassification, seed: 5);
        var peft = PeftModel.Inject(model, new LoraConfig
        {
            TargetModules = new[] { "q_proj", "v_proj" }, Rank = 2, Alpha = 4, InitLoraWeights = LoraInit.Random,
        }, generator: new Generator(17));
        model.Eval();
        return (model, peft);
    }

    /// <summary>Input [B, 2, T]: channel 0 token ids (padding id 0), channel 1 the attention mask.</summary>
    private static (Tensor Input, int[] Mask) Pack(int[][] rows)
    {
        int b = rows.Length, t = rows.Max(r => r.Length);
        var values = new float[b * 2 * t];
        var mask = new int[b * t];
        for (int n = 0; n < b; n++)
        {
            for (int j = 0; j < rows[n].Length; j++)
            {
                values[n * 2 * t + j] = rows[n][j];
                values[n * 2 * t + t + j] = 1;
                mask[n * t + j] = 1;
            }
        }
        return (Tensor.From(values, b, 2, t), mask);
    }

    private static Func<Tensor, Tensor> Logits(SequenceClassificationModel model) => packed =>
    {
        int b = packed.Size(0), t = packed.Size(2);
        var v = packed.ToArray();
        var ids = new int[b * t];
        var mask = new int[b * t];
        for (int n = 0; n < b; n++)
        {
            for (int j = 0; j < t; j++)
            {
                ids[n * t + j] = (int)v[n * 2 * t + j];
                mask[n * t + j] = (int)v[n * 2 * t + t + j];
            }
        }
        return model.Forward(ids, mask, null, b, t);
    };

    private static LaplaceLora FitPadded(PeftModel peft, SequenceClassificationModel model, bool withMask, CurvatureKind curvature)
    {
        var (input, mask) = Pack(Rows);
        var batch = new LaplaceBatch(input, Labels) { PositionMask = withMask ? mask : null };
        return LaplaceLora.Fit(peft, Logits(model), [batch], new LaplaceLoraOptions { Curvature = curvature, Fisher = FisherKind.Empirical, HeadModules = ["score"] });
    }

    private static LaplaceLora FitOneByOne(PeftModel peft, SequenceClassificationModel model, CurvatureKind curvature) =>
        LaplaceLora.Fit(peft, Logits(model), Rows.Select((r, n) => new LaplaceBatch(Pack([r]).Input, [Labels[n]])),
            new LaplaceLoraOptions { Curvature = curvature, Fisher = FisherKind.Empirical, HeadModules = ["score"] });

    /// <summary>
    /// K-FAC factors of a padded batch (lengths 3, 5, 2, 4 padded to 5) with its mask equal those of the four examples
    /// fitted alone; without the mask the padded positions' activations enter the input factor and it changes (so
    /// the comparison can fail).
    /// </summary>
    [TestMethod]
    public void PaddedBatchWithMask_HasTheFactorsOfTheUnpaddedExamples()
    {
        var (model, peft) = TinyClassifier();
        var alone = Summarize(FitOneByOne(peft, model, CurvatureKind.Kfac));
        var padded = Summarize(FitPadded(peft, model, withMask: true, CurvatureKind.Kfac));
        var unmasked = Summarize(FitPadded(peft, model, withMask: false, CurvatureKind.Kfac));

        Assert.HasCount(4 * 2 + 1, alone.Blocks);   // 2 layers × (q, v) × (A, B) + the score head
        Assert.AreEqual(alone.LogLikelihood, padded.LogLikelihood, 1e-5);
        for (int k = 0; k < alone.Blocks.Count; k++)
        {
            var (name, a, g, logDet) = alone.Blocks[k];
            AssertClose(a, padded.Blocks[k].A, $"{name} input factor A");
            AssertClose(g, padded.Blocks[k].G, $"{name} output factor G");
            Assert.AreEqual(logDet, padded.Blocks[k].LogDet, 1e-5 * Math.Abs(logDet), name);   // float32 forwards of different batch shapes round differently
        }
        Assert.AreEqual(alone.Evidence, padded.Evidence, 1e-5 * Math.Abs(alone.Evidence));

        double worst = 0;
        for (int k = 0; k < alone.Blocks.Count; k++)
        {
            var a = alone.Blocks[k].A;
            var u = unmasked.Blocks[k].A;
            for (int i = 0; i < a.Length; i++) worst = Math.Max(worst, Math.Abs(a[i] - u[i]) / (1e-3 + Math.Abs(a[i])));
        }
        Assert.IsGreaterThan(0.05, worst, "without the mask the padding positions should change some input factor");
    }

    /// <summary>Dense factors, log det and evidence of a fit, then the fit is disposed (one posterior at a time per model).</summary>
    private static (List<(string Name, double[] A, double[] G, double LogDet)> Blocks, double LogLikelihood, double Evidence) Summarize(LaplaceLora fit)
    {
        using (fit)
        {
            var blocks = fit.Blocks.Cast<KfacLaplaceLayer>()
                .Select(b => (b.Name, b.InputFactor.ToMatrix(), b.OutputFactor.ToMatrix(), b.LogDetPosteriorPrecision())).ToList();
            return (blocks, fit.TrainLogLikelihood, fit.LogMarginalLikelihood());
        }
    }

    /// <summary>
    /// The exact diagonal Fisher Σ_n (∂ℓ_n/∂θ)² from the padded, masked batch equals the one from brute-force gradients
    /// of each example run alone without padding (engine autograd on the LoRA parameters, not the probing path).
    /// </summary>
    [TestMethod]
    public void PaddedBatchWithMask_DiagonalFisherEqualsPerExampleGradients()
    {
        var (model, peft) = TinyClassifier();
        var matrices = BruteForce.LoraMatrices(peft);
        var sums = matrices.Select(m => new double[m.Weight.Count]).ToArray();
        for (int n = 0; n < Rows.Length; n++)
        {
            var input = Pack([Rows[n]]).Input;
            var p = BruteForce.Probabilities(Logits(model), input, 0);
            var g = BruteForce.Gradients(peft, Logits(model), input, 0, p.Select((v, c) => v - (c == Labels[n] ? 1 : 0)).ToArray());
            for (int k = 0; k < matrices.Count; k++)
                for (int i = 0; i < g[k].Length; i++) sums[k][i] += g[k][i] * g[k][i];
        }
        using var padded = FitPadded(peft, model, withMask: true, CurvatureKind.Diagonal);
        for (int k = 0; k < matrices.Count; k++)
        {
            var block = (DiagonalLaplace)padded.Blocks[k];
            Assert.AreEqual(matrices[k].Name, block.Name);
            var variance = new double[block.ParameterCount];
            block.PosteriorVariance(variance);
            for (int i = 0; i < variance.Length; i++)
            {
                double expected = 1 / (sums[k][i] + 1);   // N·(Σ/N) + λ, λ = 1
                Assert.AreEqual(expected, variance[i], 1e-5 * expected, $"{matrices[k].Name}[{i}]");
            }
        }
    }

    private static void AssertClose(double[] expected, double[] actual, string what)
    {
        Assert.HasCount(expected.Length, actual);
        double scale = expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++) Assert.AreEqual(expected[i], actual[i], 1e-5 * scale, $"{what}[{i}]");
    }
}
