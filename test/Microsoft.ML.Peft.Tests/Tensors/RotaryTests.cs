using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Tensors;

[TestClass]
public sealed class RotaryTests
{
    [TestMethod]
    public void RotateHalf_MatchesHfFormula()
    {
        // x·cos + rotate_half(x)·sin with duplicated tables, computed in double from HF's definition.
        int b = 2, h = 2, t = 3, d = 6;
        var g = new Generator(81);
        var x = Tensor.Randn(g, b, h, t, d);
        var (cos, sin) = RotaryTables.Create(8, d, 10000);
        var pos = Tensor.FromInt32([0, 1, 2, 5, 3, 7], b, t);
        var y = x.ApplyRotary(cos, sin, pos).ToArray();
        var xv = x.ToArray();
        var pv = pos.ToInt32Array();
        var inv = RotaryTables.InverseFrequencies(d, 10000);
        for (int bi = 0; bi < b; bi++)
        for (int hi = 0; hi < h; hi++)
        for (int ti = 0; ti < t; ti++)
        {
            int baseIndex = ((bi * h + hi) * t + ti) * d;
            int p = pv[bi * t + ti];
            for (int i = 0; i < d; i++)
            {
                double angle = (double)(float)(p * inv[i % (d / 2)]);
                double rotated = i < d / 2 ? -xv[baseIndex + i + d / 2] : xv[baseIndex + i - d / 2];
                double expected = xv[baseIndex + i] * Math.Cos(angle) + rotated * Math.Sin(angle);
                Assert.AreEqual(expected, y[baseIndex + i], 2e-6, $"b{bi} h{hi} t{ti} i{i}");
            }
        }
    }

    [TestMethod]
    public void Interleaved_AndPartialRotary_HandComputed()
    {
        // One head vector (1, 2, 3, 4, 5) with a quarter-turn on pair 0 and a half-turn on pair 1; dim 4 passes through.
        var x = Tensor.From([1, 2, 3, 4, 5], 1, 1, 1, 5);
        var cos = Tensor.From([0f, -1f], 1, 2);
        var sin = Tensor.From([1f, 0f], 1, 2);
        CollectionAssert.AreEqual(new float[] { -2, 1, -3, -4, 5 }, x.ApplyRotary(cos, sin, null, RotaryLayout.Interleaved).ToArray());
        // rotate-half pairs (0,2) and (1,3): (1,3) → (−3, 1); (2,4) → (−2, −4).
        CollectionAssert.AreEqual(new float[] { -3, -2, 1, -4, 5 }, x.ApplyRotary(cos, sin, null, RotaryLayout.RotateHalf).ToArray());
    }

    [TestMethod]
    public void Rotary_Gradients_MatchFiniteDifferences()
    {
        var (cos, sin) = RotaryTables.Create(6, 4, 100);
        var pos = Tensor.FromInt32([2, 0, 5], 3);
        GradCheck.Check(t => t[0].ApplyRotary(cos, sin, pos), [GradCheck.Param(82, 2, 2, 3, 6)]);
        GradCheck.Check(t => t[0].Transpose(1, 2).ApplyRotary(cos, sin, pos, RotaryLayout.Interleaved), [GradCheck.Param(83, 1, 3, 2, 4)]);
    }

    [TestMethod]
    public void PositionOutsideTable_IsReported()
    {
        var (cos, sin) = RotaryTables.Create(4, 4, 100);
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            Tensor.Zeros(1, 1, 2, 4).ApplyRotary(cos, sin, Tensor.FromInt32([1, 4], 2)));
        StringAssert.Contains(ex.Message, "position 4");
    }
}
