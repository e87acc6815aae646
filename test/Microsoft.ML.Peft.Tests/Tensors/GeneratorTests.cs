using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Tensors;

[TestClass]
public sealed class GeneratorTests
{
    [TestMethod]
    public void Bits_MatchIndependentPythonSplitMix64()
    {
        foreach (var entry in EngineReference.Root.GetProperty("rng").EnumerateArray())
        {
            var g = new Generator(ulong.Parse(entry.GetProperty("seed").GetString()!));
            var bits = entry.GetProperty("bits").EnumerateArray().Select(e => ulong.Parse(e.GetString()!)).ToArray();
            for (int i = 0; i < bits.Length; i++) Assert.AreEqual(bits[i], g.BitsAt(i));
            var uniform = entry.GetProperty("uniform").EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();
            var draws = new float[uniform.Length];
            g.FillUniform(draws);
            CollectionAssert.AreEqual(uniform, draws);
            Assert.AreEqual(uniform.Length, g.Offset);
        }
    }

    [TestMethod]
    public void SameSeed_SameTensors_IndependentOfChunking()
    {
        var a = Tensor.Randn(new Generator(5), 300, 400).ToArray();      // large: filled in parallel chunks
        var g = new Generator(5);
        var b = new float[a.Length];
        g.FillNormal(b);                                                  // sequential
        CollectionAssert.AreEqual(a, b);
        CollectionAssert.AreNotEqual(a, Tensor.Randn(new Generator(6), 300, 400).ToArray());
    }

    [TestMethod]
    public void Distributions_HaveTheRightMoments()
    {
        var u = Tensor.Rand(new Generator(1), 200000).ToArray();
        Assert.AreEqual(0.5, u.Average(), 0.003);
        Assert.IsTrue(u.Min() >= 0f && u.Max() < 1f);
        var n = Tensor.Randn(new Generator(2), 200000).ToArray();
        double mean = n.Average(), var = n.Select(v => (v - mean) * (v - mean)).Average();
        Assert.AreEqual(0, mean, 0.01);
        Assert.AreEqual(1, var, 0.01);
        var k = Tensor.Empty(64, 100).KaimingUniform_(new Generator(3)).ToArray();
        Assert.IsTrue(k.Max() <= 0.1f && k.Min() >= -0.1f && k.Max() > 0.099f, "bound 1/√fan_in = 0.1");
    }

    [TestMethod]
    public void Dropout_IsSeeded_ScalesSurvivors_AndIsIdentityInEval()
    {
        var x = Tensor.Ones(100000);
        var y1 = x.Dropout(0.25f, new Generator(7)).ToArray();
        var y2 = x.Dropout(0.25f, new Generator(7)).ToArray();
        CollectionAssert.AreEqual(y1, y2);
        Assert.AreEqual(0.25, y1.Count(v => v == 0f) / 100000.0, 0.005);
        Assert.IsTrue(y1.All(v => v == 0f || v == 1f / 0.75f));
        Assert.AreSame(x, x.Dropout(0.25f, new Generator(7), training: false));
        var p = GradCheck.Param(8, 4, 5);
        GradCheck.Check(t => t[0].Dropout(0.5f, new Generator(9)), [p]);
    }
}
