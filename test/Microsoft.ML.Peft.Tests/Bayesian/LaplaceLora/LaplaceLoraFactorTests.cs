using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Bayesian.LaplaceLora;

using LaplaceLora = Microsoft.ML.Peft.Bayesian.LaplaceLora;

/// <summary>
/// The K-FAC factors of every LoRA matrix, each side on its own, against factors built by hand in double: the TinyMlp
/// forward and its chain rule written out (no engine), so the probe node's derived rows (B's input s·x·Aᵀ and output
/// gradient g; A's input x and output gradient s·(g·B); the input gradient it passes on) are checked, not only their
/// Kronecker product. Positions are used per example (logits = Σ_t mask_t·f(x_t)) with padding inside and at the ends
/// of the examples, so the masked capture's runs and row counts are checked too.
/// </summary>
[TestClass]
public sealed class LaplaceLoraFactorTests
{
    private const int Inputs = 5, Hidden = 6, Classes = 3, Rank = 2, Positions = 4;

    [TestMethod]
    public void EmpiricalFactors_EqualHandBuiltDoubleFactors() => CheckFactors(FisherKind.Empirical, padded: true);

    /// <summary>Three classes: the exact Fisher takes three backward passes per batch, all captured into G.</summary>
    [TestMethod]
    public void ExactFactors_EqualHandBuiltDoubleFactors() => CheckFactors(FisherKind.Exact, padded: true);

    /// <summary>No padding, logits = Σ_t f: the probe nodes receive the sum's gradient, an expanded (zero-stride) view.</summary>
    [TestMethod]
    public void UnpaddedFactors_FromExpandedGradients_EqualHandBuiltDoubleFactors() => CheckFactors(FisherKind.Empirical, padded: false);

    private static void CheckFactors(FisherKind fisher, bool padded)
    {
        var (model, peft) = TinyMlp.WithLora(seed: 5, Inputs, Hidden, Classes, Rank);
        var x1 = Tensor.Randn(new Generator(21), 3, Positions, Inputs);
        var x2 = Tensor.Randn(new Generator(22), 2, Positions, Inputs);
        int[] mask1 = padded ? [1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 0] : Enumerable.Repeat(1, 12).ToArray();
        int[] mask2 = padded ? [1, 1, 0, 0, 0, 1, 0, 1] : Enumerable.Repeat(1, 8).ToArray();
        int[] labels1 = [2, 0, 1], labels2 = [1, 2];
        Func<Tensor, Tensor> logits = padded ? x => MaskedSum(model.Forward(x), x.Size(0) == 3 ? mask1 : mask2) : x => model.Forward(x).Sum(1);

        var reference = new HandBuiltFactors(peft);   // before the fit: it installs probed layers in the LoRA layers' slots
        reference.Add(x1.ToArray(), mask1, labels1, fisher);
        reference.Add(x2.ToArray(), mask2, labels2, fisher);

        using var laplace = LaplaceLora.Fit(peft, logits,
            [new LaplaceBatch(x1, labels1) { PositionMask = padded ? mask1 : null }, new LaplaceBatch(x2, labels2) { PositionMask = padded ? mask2 : null }],
            new LaplaceLoraOptions { Fisher = fisher });
        Assert.AreEqual(4, laplace.Blocks.Count);
        for (int k = 0; k < 4; k++)
        {
            var block = (KfacLaplaceLayer)laplace.Blocks[k];
            var (inputFactor, outputFactor) = reference.Factors(k);
            AssertClose(inputFactor, block.InputFactor.ToMatrix(), $"{block.Name} input factor A");
            AssertClose(outputFactor, block.OutputFactor.ToMatrix(), $"{block.Name} output-gradient factor G");
        }
    }

    /// <summary>
    /// Two active adapters per layer (their updates add up): the probed layer chains one probe node per adapter, each
    /// passing g to the running sum. With one example K-FAC is exact, so every block's precision times v must be
    /// g (gᵀv) + λv for the gradient g of that adapter's matrix by the engine's ordinary backward on the LoRA layers.
    /// </summary>
    [TestMethod]
    public void TwoActiveAdapters_EachBlockIsItsOwnExactFisher()
    {
        var (model, peft) = TinyMlp.WithLora(seed: 6, Inputs, Hidden, Classes, Rank);
        peft.AddAdapter("second", new LoraConfig { TargetModules = new[] { "fc1", "fc2" }, Rank = 3, Alpha = 4, InitLoraWeights = LoraInit.Random });
        peft.SetAdapters(["default", "second"]);
        model.Eval();
        var x = Tensor.Randn(new Generator(23), 1, Inputs);
        const int label = 1;
        var matrices = peft.TunerLayers().SelectMany(l =>
        {
            var lora = (LoraLinear)l.Layer;
            return new[] { "default", "second" }.SelectMany(a => new[] { ($"{l.Path}.lora_A.{a}", lora.LoraA(a)), ($"{l.Path}.lora_B.{a}", lora.LoraB(a)) });
        }).ToList();
        var gradients = EmpiricalGradients(model, matrices.Select(m => m.Item2).ToList(), x, label);

        using var laplace = LaplaceLora.Fit(peft, model.Forward, [new LaplaceBatch(x, [label])],
            new LaplaceLoraOptions { Fisher = FisherKind.Empirical, PriorPrecision = 0.3 });

        Assert.HasCount(8, laplace.Blocks);
        var random = new Random(2);
        for (int k = 0; k < 8; k++)
        {
            var block = (KfacLaplaceLayer)laplace.Blocks[k];
            Assert.AreEqual(matrices[k].Item1, block.Name);
            var v = Enumerable.Range(0, block.ParameterCount).Select(_ => random.NextDouble() - 0.5).ToArray();
            var pv = new double[v.Length];
            block.PrecisionTimes(v, pv);
            double gv = gradients[k].Zip(v, (a, b) => a * b).Sum();
            double scale = gradients[k].Max(Math.Abs);
            Assert.IsGreaterThan(1e-4, scale, $"{block.Name}: gradient is degenerate");
            for (int i = 0; i < v.Length; i++) Assert.AreEqual(gradients[k][i] * gv + 0.3 * v[i], pv[i], 1e-5 * (1 + scale * scale), $"{block.Name} P·v[{i}]");
        }
    }

    /// <summary>∂(−log p(label))/∂W for each weight, by one ordinary forward and backward (weights made trainable meanwhile).</summary>
    private static double[][] EmpiricalGradients(TinyMlp model, List<Tensor> weights, Tensor x, int label)
    {
        using var scope = TensorScope.Begin();
        var flags = weights.Select(w => w.RequiresGrad).ToArray();
        foreach (var w in weights)
        {
            w.RequiresGrad = true;
            w.ZeroGrad();
        }
        var logits = model.Forward(x);
        var f = Array.ConvertAll(logits.ToArray(), v => (double)v);
        double max = f.Max(), total = f.Sum(v => Math.Exp(v - max));
        var seed = f.Select((v, c) => (float)(Math.Exp(v - max) / total - (c == label ? 1 : 0))).ToArray();
        logits.Backward(Tensor.From(seed, 1, Classes));
        var result = weights.Select(w => Array.ConvertAll(w.Grad!.ToArray(), v => (double)v)).ToArray();
        for (int i = 0; i < weights.Count; i++)
        {
            weights[i].ZeroGrad();
            weights[i].RequiresGrad = flags[i];
        }
        return result;
    }

    /// <summary>Σ_t mask_t·f [B, T, C] → [B, C]: padded positions neither reach the logits nor count as rows.</summary>
    private static Tensor MaskedSum(Tensor f, int[] mask) =>
        f.Mul(Tensor.From(Array.ConvertAll(mask, m => (float)m), f.Size(0), f.Size(1), 1)).Sum(1);

    private static void AssertClose(double[] expected, double[] actual, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, what);
        double scale = expected.Max(Math.Abs), worst = 0;
        Assert.IsTrue(scale > 1e-3, $"{what}: reference is degenerate");
        for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]) / scale);
        // Float forward and single-precision Grams against a double reference: ~1e-7 relative; 2e-6 leaves headroom.
        Assert.IsLessThan(2e-6, worst, $"{what}: largest error {worst:E2} of the largest entry {scale:G4}");
    }

    /// <summary>
    /// TinyMlp with LoRA on fc1 and fc2, per position t: y1 = W1x + b1 + B1·(s·A1x), h = tanh y1,
    /// f = W2h + b2 + B2·(s·A2h); the seed e at the logits reaches every real position's f unchanged. Rows per matrix:
    /// fc1.A (x, s·B1ᵀg1), fc1.B (s·A1x, g1), fc2.A (h, s·B2ᵀe), fc2.B (s·A2h, e) with g1 = (W2 + s·B2A2)ᵀe ⊙ (1 − h²).
    /// </summary>
    private sealed class HandBuiltFactors
    {
        private readonly (double[] W, double[] Bias, double[] A, double[] B, double S)[] layers;
        private readonly double[][] inputSums = new double[4][], outputSums = new double[4][];
        private readonly int[] inputWidths = [Inputs, Rank, Hidden, Rank], outputWidths = [Rank, Hidden, Rank, Classes];
        private int rows, examples;

        public HandBuiltFactors(PeftModel peft)
        {
            layers = peft.TunerLayers().Select(l =>
            {
                var lora = (LoraLinear)l.Layer;
                var linear = (Linear)lora.Base;
                return (D(linear.Weight), D(linear.Bias!), D(lora.LoraA("default")), D(lora.LoraB("default")), (double)lora.Scaling("default"));
            }).ToArray();
            for (int k = 0; k < 4; k++)
            {
                inputSums[k] = new double[inputWidths[k] * inputWidths[k]];
                outputSums[k] = new double[outputWidths[k] * outputWidths[k]];
            }
        }

        public void Add(float[] x, int[] mask, int[] labels, FisherKind fisher)
        {
            for (int n = 0; n < labels.Length; n++)
            {
                var f = new double[Classes];
                var activations = new List<(double[] X, double[] L1, double[] H, double[] L2)>();
                for (int t = 0; t < Positions; t++)
                {
                    if (mask[n * Positions + t] == 0) continue;
                    var xt = Array.ConvertAll(x[((n * Positions + t) * Inputs)..((n * Positions + t + 1) * Inputs)], v => (double)v);
                    var (y1, l1) = Layer(layers[0], xt);
                    var h = y1.Select(Math.Tanh).ToArray();
                    var (y2, l2) = Layer(layers[1], h);
                    for (int c = 0; c < Classes; c++) f[c] += y2[c];
                    activations.Add((xt, l1, h, l2));
                }
                foreach (var (xt, l1, h, l2) in activations)
                {
                    AddOuter(inputSums[0], xt);
                    AddOuter(inputSums[1], l1);
                    AddOuter(inputSums[2], h);
                    AddOuter(inputSums[3], l2);
                    rows++;
                }
                foreach (var e in Seeds(f, labels[n], fisher))
                {
                    foreach (var (_, _, h, _) in activations) AddOutputGradients(e, h);
                }
                examples++;
            }
        }

        /// <summary>(A, G) of matrix k as the fit normalises them: A = Σ a aᵀ / rows, G = Σ g gᵀ / examples.</summary>
        public (double[] Input, double[] Output) Factors(int k) =>
            (inputSums[k].Select(v => v / rows).ToArray(), outputSums[k].Select(v => v / examples).ToArray());

        private void AddOutputGradients(double[] e, double[] h)
        {
            var (w2, _, a2, b2, s2) = layers[1];
            var (_, _, _, b1, s1) = layers[0];
            AddOuter(outputSums[3], e);
            AddOuter(outputSums[2], Scaled(TransposeTimes(b2, e, Classes, Rank), s2));
            // ∂L/∂h through the base product and the LoRA branch, then through tanh.
            var gh = TransposeTimes(w2, e, Classes, Hidden);
            var viaLora = TransposeTimes(a2, Scaled(TransposeTimes(b2, e, Classes, Rank), s2), Rank, Hidden);
            var g1 = gh.Select((v, i) => (v + viaLora[i]) * (1 - h[i] * h[i])).ToArray();
            AddOuter(outputSums[1], g1);
            AddOuter(outputSums[0], Scaled(TransposeTimes(b1, g1, Hidden, Rank), s1));
        }

        /// <summary>Empirical: p − onehot(label); exact: √p_c·(e_c − p) for every class c.</summary>
        private static IEnumerable<double[]> Seeds(double[] f, int label, FisherKind fisher)
        {
            double max = f.Max();
            var p = f.Select(v => Math.Exp(v - max)).ToArray();
            double total = p.Sum();
            for (int c = 0; c < Classes; c++) p[c] /= total;
            if (fisher == FisherKind.Empirical)
            {
                yield return p.Select((v, c) => v - (c == label ? 1 : 0)).ToArray();
                yield break;
            }
            for (int column = 0; column < Classes; column++)
                yield return p.Select((v, c) => Math.Sqrt(p[column]) * ((c == column ? 1 : 0) - v)).ToArray();
        }

        private static (double[] Y, double[] Low) Layer((double[] W, double[] Bias, double[] A, double[] B, double S) layer, double[] x)
        {
            int outputs = layer.Bias.Length;
            var low = Scaled(Times(layer.A, x, Rank), layer.S);
            var lora = Times(layer.B, low, outputs);
            var baseOut = Times(layer.W, x, outputs);
            return (baseOut.Select((v, i) => v + layer.Bias[i] + lora[i]).ToArray(), low);
        }

        private static double[] Times(double[] m, double[] v, int rowCount)
        {
            var r = new double[rowCount];
            for (int i = 0; i < rowCount; i++)
            for (int j = 0; j < v.Length; j++) r[i] += m[i * v.Length + j] * v[j];
            return r;
        }

        private static double[] TransposeTimes(double[] m, double[] v, int rowCount, int columnCount)
        {
            var r = new double[columnCount];
            for (int i = 0; i < rowCount; i++)
            for (int j = 0; j < columnCount; j++) r[j] += m[i * columnCount + j] * v[i];
            return r;
        }

        private static double[] Scaled(double[] v, double s) => v.Select(a => a * s).ToArray();

        private static void AddOuter(double[] sum, double[] v)
        {
            for (int i = 0; i < v.Length; i++)
            for (int j = 0; j < v.Length; j++) sum[i * v.Length + j] += v[i] * v[j];
        }

        private static double[] D(Tensor t) => Array.ConvertAll(t.ToArray(), v => (double)v);
    }
}
