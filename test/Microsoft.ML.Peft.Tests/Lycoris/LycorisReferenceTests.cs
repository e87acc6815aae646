using System.Text.Json;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Lycoris;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;

namespace Microsoft.ML.Peft.Tests.Lycoris;

/// <summary>
/// LoHa and LoKr against build/reference/lycoris_reference.py (Fixtures/lycoris/lycoris.*: PEFT's formulas in PyTorch):
/// ΔW, the layer output and the gradients of every factor and of the input; PEFT's factorization table; and the
/// gradients once more against central finite differences of the loss computed in double.
/// </summary>
[TestClass]
public sealed class LycorisReferenceTests
{
    private static string Folder => TestPaths.Fixture("lycoris");

    private static Dictionary<string, Tensor> Fixture()
    {
        using var file = SafeTensorsFile.Open(Path.Combine(Folder, "lycoris.safetensors"));
        return file.Tensors.ToDictionary(v => v.Name, v => Tensor.From(v.ToFloat32Array(), [.. v.Shape]), StringComparer.Ordinal);
    }

    private static JsonElement Cases() => JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "lycoris.json"))).RootElement;

    [TestMethod]
    public void Factorization_MatchesPefts_OverTheWholeTable()
    {
        var rows = Cases().GetProperty("factorization").GetProperty("rows");
        Assert.IsTrue(rows.GetArrayLength() > 100);
        foreach (var row in rows.EnumerateArray())
        {
            int dimension = row[0].GetInt32(), factor = row[1].GetInt32();
            var expected = (row[2].GetInt32(), row[3].GetInt32());
            Assert.AreEqual(expected, LoKrFactorization.Factorize(dimension, factor), $"factorization({dimension}, {factor})");
        }
    }

    /// <summary>Runs loss = Σ y ⊙ R through <paramref name="layer"/> and compares everything the fixture holds under <paramref name="prefix"/>.</summary>
    private static void CompareWithFixture(LycorisLinear layer, Dictionary<string, Tensor> f, string prefix)
    {
        layer.SetActiveAdapters(["default"], trainable: true);
        using (Autograd.NoGrad())
        {
            foreach (var (suffix, tensor) in layer.AdapterTensors("default")) tensor.CopyFrom_(f[prefix + suffix]);
        }
        LoraFixtures.AssertClose(f[prefix + "delta_weight"], layer.DeltaWeight("default"), 1e-6, 1e-5, prefix + "ΔW");
        var x = f[prefix + "input"].Clone();
        x.RequiresGrad = true;
        var y = layer.Forward(x);
        LoraFixtures.AssertClose(f[prefix + "output"], y, 1e-5, 1e-5, prefix + "output");
        y.Mul(f[prefix + "R"]).Sum().Backward();
        LoraFixtures.AssertClose(f[prefix + "grad.input"], x.Grad!, 1e-5, 1e-5, prefix + "d/dx");
        foreach (var (suffix, tensor) in layer.AdapterTensors("default"))
            LoraFixtures.AssertClose(f[prefix + "grad." + suffix], tensor.Grad!, 1e-5, 1e-5, prefix + "d/d" + suffix);
    }

    [TestMethod]
    public void LoHa_DeltaOutputAndGradients_MatchPyTorch()
    {
        var f = Fixture();
        var layer = new LoHaLinear(new Linear(f["loha.base.weight"].Clone(), f["loha.base.bias"].Clone()));
        layer.UpdateLayer("default", 2, 3.0, 0, 0, initWeights: true, new Generator(1));
        CompareWithFixture(layer, f, "loha.");
    }

    [TestMethod]
    [DataRow("lokr_full")]
    [DataRow("lokr_decomposed")]
    public void LoKr_ShapeDeltaOutputAndGradients_MatchPyTorch(string name)
    {
        var f = Fixture();
        var c = Cases().GetProperty("cases").GetProperty(name);
        var layer = new LoKrLinear(new Linear(f[name + ".base.weight"].Clone(), f[name + ".base.bias"].Clone()));
        layer.UpdateLayer("default", c.GetProperty("r").GetInt32(), c.GetProperty("alpha").GetDouble(), 0, 0, initWeights: true,
            c.GetProperty("decompose_both").GetBoolean(), c.GetProperty("decompose_factor").GetInt32(), rankDropoutScale: false, new Generator(1));
        var shape = layer.Shape("default");
        var outs = c.GetProperty("out_l_out_k");
        var ins = c.GetProperty("in_m_in_n");
        Assert.AreEqual((outs[0].GetInt32(), outs[1].GetInt32(), ins[0].GetInt32(), ins[1].GetInt32()), (shape.OutL, shape.OutK, shape.InM, shape.InN));
        Assert.AreEqual((c.GetProperty("use_w1").GetBoolean(), c.GetProperty("use_w2").GetBoolean()), (shape.FullW1, shape.FullW2));
        CollectionAssert.AreEqual(c.GetProperty("parameters").EnumerateArray().Select(p => p.GetString()).ToList(), layer.AdapterTensors("default").Select(t => t.Suffix).ToList());
        CompareWithFixture(layer, f, name + ".");
    }

    /// <summary>ΔW [out, in] from the factors in double: PEFT's formulas restated independently of the engine.</summary>
    private static double[] DeltaInDouble(LycorisLinear layer, Dictionary<string, double[]> p)
    {
        int outF = layer.OutFeatures, inF = layer.InFeatures;
        double s = layer.Scaling("default");
        var delta = new double[outF * inF];
        if (layer is LoHaLinear)
        {
            int r = layer.Rank("default");
            for (int i = 0; i < outF; i++)
            {
                for (int j = 0; j < inF; j++)
                {
                    double first = 0, second = 0;
                    for (int k = 0; k < r; k++)
                    {
                        first += p["hada_w1_a"][i * r + k] * p["hada_w1_b"][k * inF + j];
                        second += p["hada_w2_a"][i * r + k] * p["hada_w2_b"][k * inF + j];
                    }
                    delta[i * inF + j] = first * second * s;
                }
            }
            return delta;
        }
        var shape = ((LoKrLinear)layer).Shape("default");
        var w1 = shape.FullW1 ? p["lokr_w1"] : Product(p["lokr_w1_a"], p["lokr_w1_b"], shape.OutL, layer.Rank("default"), shape.InM);
        var w2 = shape.FullW2 ? p["lokr_w2"] : Product(p["lokr_w2_a"], p["lokr_w2_b"], shape.OutK, layer.Rank("default"), shape.InN);
        for (int a = 0; a < shape.OutL; a++)
        for (int b = 0; b < shape.OutK; b++)
        for (int c = 0; c < shape.InM; c++)
        for (int d = 0; d < shape.InN; d++)
            delta[(a * shape.OutK + b) * inF + c * shape.InN + d] = w1[a * shape.InM + c] * w2[b * shape.InN + d] * s;
        return delta;
    }

    private static double[] Product(double[] a, double[] b, int rows, int inner, int cols)
    {
        var result = new double[rows * cols];
        for (int i = 0; i < rows; i++)
        for (int k = 0; k < inner; k++)
        for (int j = 0; j < cols; j++)
            result[i * cols + j] += a[i * inner + k] * b[k * cols + j];
        return result;
    }

    /// <summary>Σ R ⊙ (x·ΔWᵀ) in double (the base term does not depend on the factors).</summary>
    private static double LossInDouble(LycorisLinear layer, Dictionary<string, double[]> p, float[] x, float[] r, int rows)
    {
        var delta = DeltaInDouble(layer, p);
        int outF = layer.OutFeatures, inF = layer.InFeatures;
        double loss = 0;
        for (int n = 0; n < rows; n++)
        {
            for (int o = 0; o < outF; o++)
            {
                double y = 0;
                for (int j = 0; j < inF; j++) y += delta[o * inF + j] * x[n * inF + j];
                loss += y * r[n * outF + o];
            }
        }
        return loss;
    }

    [TestMethod]
    [DataRow("LOHA", 6, 5, 2, false, -1)]
    [DataRow("LOKR", 12, 8, 2, false, 4)]
    [DataRow("LOKR", 16, 24, 1, true, -1)]
    public void Gradients_MatchFiniteDifferencesInDouble(string method, int inF, int outF, int rank, bool decomposeBoth, int factor)
    {
        var g = new Generator(21);
        LycorisLinear layer;
        if (method == "LOHA")
        {
            var loha = new LoHaLinear(new Linear(inF, outF, g));
            loha.UpdateLayer("default", rank, 3.0, 0, 0, initWeights: false, g);
            layer = loha;
        }
        else
        {
            var lokr = new LoKrLinear(new Linear(inF, outF, g));
            lokr.UpdateLayer("default", rank, 3.0, 0, 0, initWeights: false, decomposeBoth, factor, false, g);
            layer = lokr;
        }
        layer.SetActiveAdapters(["default"], trainable: true);
        var x = Tensor.Randn(g, 4, inF);
        var r = Tensor.Randn(g, 4, outF);
        layer.Forward(x).Mul(r).Sum().Backward();

        var values = layer.AdapterTensors("default").ToDictionary(t => t.Suffix, t => Array.ConvertAll(t.Tensor.ToArray(), v => (double)v));
        var xs = x.ToArray();
        var rs = r.ToArray();
        const double h = 1e-6;
        foreach (var (suffix, tensor) in layer.AdapterTensors("default"))
        {
            var grad = tensor.Grad!.ToArray();
            var p = values[suffix];
            double scale = grad.Max(v => Math.Abs((double)v));
            for (int i = 0; i < p.Length; i++)
            {
                double saved = p[i];
                p[i] = saved + h;
                double plus = LossInDouble(layer, values, xs, rs, 4);
                p[i] = saved - h;
                double minus = LossInDouble(layer, values, xs, rs, 4);
                p[i] = saved;
                double numeric = (plus - minus) / (2 * h);
                Assert.AreEqual(numeric, grad[i], 1e-4 * Math.Max(1, scale), $"{method} d/d{suffix}[{i}]");
            }
        }
    }
}
