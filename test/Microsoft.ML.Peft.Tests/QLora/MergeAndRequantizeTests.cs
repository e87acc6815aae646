using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Quantization;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.QLora;

/// <summary>
/// Merging LoRA adapters trained on a 4-bit stories260K into a dequantized copy and re-quantizing it, checked against
/// the merged weights computed independently in double precision.
/// </summary>
[TestClass]
public sealed class MergeAndRequantizeTests
{
    private static readonly string[] AllLinear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    private static readonly int[] Ids = [1, 403, 261, 300, 17, 88, 410, 29, 2, 7, 99, 5];

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void MergeAndRequantize_MatchesTheIndependentMerge(bool requantize)
    {
        var (model, expected) = AdaptedModel(FourBitType.NF4);
        float[] before = Logits(model);

        var report = QuantizedModel.MergeAndRequantize(model, () => model.Forward(Tensor.FromInt32(Ids, 1, Ids.Length)), requantize);

        Assert.AreEqual(35, report.MergedLayers.Count);
        Assert.AreEqual(35, report.DequantizedLayers.Count);
        StringAssert.EndsWith(report.DequantizedLayers[0], ".base_layer");
        Assert.AreEqual(requantize ? 35 : 0, report.RequantizedLayers.Count);
        Assert.IsFalse(model.NamedModules().Any(m => m.Module is LoraLinear));

        // The merge itself only rounds: the adapted 4-bit model and the merged fp32 model compute the same function.
        Assert.IsTrue(report.MaxLogitChangeFromMerge < 2e-5f, $"merge moved logits by {report.MaxLogitChangeFromMerge}");
        float[] after = Logits(model);
        Assert.AreEqual(before.Zip(after, (a, b) => Math.Abs(a - b)).Max(), report.MaxLogitChange);

        float nf4MaxGap = MaxGap(FourBitCodebook.For(FourBitType.NF4).Values);
        foreach (var (name, reference) in expected)
        {
            if (!requantize)
            {
                var weight = Assert.IsInstanceOfType<Linear>(model.GetModule(name)).Weight.ToArray();
                for (int i = 0; i < weight.Length; i++) Assert.AreEqual(reference[i], weight[i], 1e-6, $"{name}[{i}]");
                continue;
            }
            // Re-quantized with the layer's own settings (NF4, block 64, fp32 scales): every value lies within half
            // the widest NF4 gap times its block's absmax of the exact merged weight.
            var q = Assert.IsInstanceOfType<QuantizedLinear>(model.GetModule(name)).Weight;
            Assert.AreEqual(FourBitType.NF4, q.QuantType);
            Assert.IsFalse(q.IsDoubleQuantized);
            float[] values = q.Dequantize();
            for (int block = 0; block < q.BlockCount; block++)
            {
                int start = block * q.BlockSize, end = Math.Min(values.Length, start + q.BlockSize);
                double absmax = 0;
                for (int i = start; i < end; i++) absmax = Math.Max(absmax, Math.Abs(reference[i]));
                for (int i = start; i < end; i++)
                {
                    Assert.IsTrue(Math.Abs(values[i] - reference[i]) <= 0.5 * nf4MaxGap * absmax * (1 + 1e-5) + 1e-7, $"{name}[{i}]: {values[i]} vs {reference[i]}");
                    // Exactly: the published NF4 level nearest to w / absmax, times absmax. The merged weight the
                    // quantizer saw differs from the double reference by ~1e-6, so within 1e-5 of a midpoint either
                    // neighbour is right.
                    double x = reference[i] / absmax;
                    var byDistance = PublishedNf4.Select(level => (Level: level, Distance: Math.Abs(x - level))).OrderBy(c => c.Distance).ToArray();
                    bool nearTie = byDistance[1].Distance - byDistance[0].Distance < 1e-5;
                    bool isNearest = Math.Abs(values[i] - byDistance[0].Level * absmax) <= 1e-5 * absmax;
                    bool isSecond = nearTie && Math.Abs(values[i] - byDistance[1].Level * absmax) <= 1e-5 * absmax;
                    Assert.IsTrue(isNearest || isSecond, $"{name}[{i}]: {values[i]} is not NF4 level {byDistance[0].Level} × absmax {absmax} = {byDistance[0].Level * absmax}");
                }
            }
        }
        if (requantize) Assert.IsTrue(report.MaxLogitChangeFromRequantization > 0f);
        else Assert.AreEqual(0f, report.MaxLogitChangeFromRequantization);
    }

    [TestMethod]
    public void MergeAndRequantize_WithoutAdapters_Throws()
    {
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
        QuantizedModel.QuantizeLinearLayers(model);
        Assert.ThrowsExactly<InvalidOperationException>(() => QuantizedModel.MergeAndRequantize(model, () => model.Forward(Tensor.FromInt32(Ids, 1, Ids.Length))));
    }

    /// <summary>
    /// stories260K quantized (fp32 scales) with LoRA r = 4 on every linear layer and random B, and for each layer the
    /// merged weight W_deq + s·B·A computed in double.
    /// </summary>
    private static (CausalLanguageModel Model, List<(string Name, double[] Weight)> Expected) AdaptedModel(FourBitType type)
    {
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
        QuantizedModel.QuantizeLinearLayers(model, new QuantizationOptions { Type = type, DoubleQuant = false });
        model.SetRequiresGrad(false);
        var g = new Generator(11);
        var targets = LoraInjector.Inject(model, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = AllLinear }, "default", g);
        var expected = new List<(string, double[])>();
        foreach (string name in targets)
        {
            var lora = (LoraLinear)model.GetModule(name);
            lora.SetActiveAdapters(["default"], trainable: true);
            using (Autograd.NoGrad()) lora.LoraB("default").Uniform_(g, -0.05f, 0.05f);
            var w = ((QuantizedLinear)lora.Base).Weight;
            float[] deq = w.Dequantize(), a = lora.LoraA("default").ToArray(), b = lora.LoraB("default").ToArray();
            int rows = w.Rows, cols = w.Columns, rank = lora.Rank("default");
            double scaling = lora.Scaling("default");
            var merged = new double[deq.Length];
            for (int i = 0; i < rows; i++)
            {
                for (int j = 0; j < cols; j++)
                {
                    double sum = 0;
                    for (int r = 0; r < rank; r++) sum += (double)b[i * rank + r] * a[r * cols + j];
                    merged[i * cols + j] = deq[i * cols + j] + scaling * sum;
                }
            }
            expected.Add((name, merged));
        }
        return (model, expected);
    }

    /// <summary>NF4 as published with QLoRA (Dettmers et al. 2023, appendix E; bitsandbytes' table), typed in here.</summary>
    private static readonly double[] PublishedNf4 =
    [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
        -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ];

    private static float MaxGap(ReadOnlySpan<float> levels)
    {
        var sorted = levels.ToArray();
        Array.Sort(sorted);
        float gap = 0f;
        for (int i = 1; i < sorted.Length; i++) gap = Math.Max(gap, sorted[i] - sorted[i - 1]);
        return gap;
    }

    private static float[] Logits(CausalLanguageModel model)
    {
        using (Autograd.NoGrad())
        using (TensorScope.Begin())
            return model.Forward(Tensor.FromInt32(Ids, 1, Ids.Length)).ToArray();
    }
}
