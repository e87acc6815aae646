using Microsoft.ML.Peft.Reft;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Reft;

/// <summary>
/// One intervention on its own: R's orthonormality and value against <see cref="ReftMath"/> (full d×d Householder
/// matrices in double), Φ against the formula in double, and the gradients of V, W and b against central finite
/// differences of the double implementation.
/// </summary>
[TestClass]
public sealed class ReftInterventionTests
{
    private const int Rank = 3, Hidden = 8;

    [TestMethod]
    public void Rotation_HasOrthonormalRows_AndEqualsTheProductOfFullHouseholderMatrices()
    {
        var rotation = new HouseholderRotation(Rank, Hidden, new Generator(3));
        var actual = rotation.Weight().ToArray();
        var expected = ReftMath.Rotation(ReftMath.ToDouble(rotation.Householder.ToArray()), Rank, Hidden);
        for (int k = 0; k < actual.Length; k++) Assert.AreEqual(expected[k], actual[k], 1e-6, $"R[{k / Hidden}, {k % Hidden}]");
        for (int i = 0; i < Rank; i++)
        {
            for (int j = 0; j < Rank; j++)
            {
                double dot = 0;
                for (int c = 0; c < Hidden; c++) dot += (double)actual[i * Hidden + c] * actual[j * Hidden + c];
                Assert.AreEqual(i == j ? 1.0 : 0.0, dot, 1e-6, $"(R·Rᵀ)[{i}, {j}]");
            }
        }
    }

    [TestMethod]
    public void Rotation_AtZeroParameter_IsMinusTheLeadingIdentityRows()
    {
        // Every reflection then flips one coordinate axis: H_i = I − 2·e_i·e_iᵀ, so R = −I_{r×d}.
        var rotation = new HouseholderRotation(2, 4, new Generator(1));
        rotation.Householder.AsSpan<float>().Clear();
        CollectionAssert.AreEqual(new float[] { -1, 0, 0, 0, 0, -1, 0, 0 }, rotation.Weight().ToArray());
    }

    [TestMethod]
    public void RankAboveHidden_IsRefused_NamingBothSizes()
    {
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new HouseholderRotation(9, 8, new Generator(1)));
        StringAssert.Contains(e.Message, "low_rank_dimension 9 exceeds the hidden size 8");
    }

    [TestMethod]
    [DataRow(ReftInterventionType.Loreft)]
    [DataRow(ReftInterventionType.Direft)]
    public void Forward_EqualsTheFormulaInDouble(ReftInterventionType type)
    {
        var intervention = new ReftIntervention(type, Rank, Hidden, new Generator(5));
        var h = Tensor.Randn(new Generator(6), 2, 3, Hidden);
        var actual = intervention.Forward(h).ToArray();
        var rot = ReftMath.Rotation(ReftMath.ToDouble(intervention.RotateLayer.Householder.ToArray()), Rank, Hidden);
        var w = ReftMath.ToDouble(intervention.LearnedSource.Weight.ToArray());
        var b = ReftMath.ToDouble(intervention.LearnedSource.Bias!.ToArray());
        var hv = ReftMath.ToDouble(h.ToArray());
        for (int p = 0; p < 6; p++)
        {
            var expected = ReftMath.Phi(type == ReftInterventionType.Loreft, rot, w, b, hv[(p * Hidden)..((p + 1) * Hidden)], Rank, Hidden);
            for (int j = 0; j < Hidden; j++) Assert.AreEqual(expected[j], actual[p * Hidden + j], 2e-5, $"{type} position {p}, feature {j}");
        }
    }

    [TestMethod]
    public void Loreft_WithWEqualToRAndZeroBias_IsTheIdentity()
    {
        // Φ(h) = h + Rᵀ(R·h + 0 − R·h) = h: pyreft initialises W randomly, so this is the formula's fixed point, not the init.
        var intervention = new ReftIntervention(ReftInterventionType.Loreft, Rank, Hidden, new Generator(7));
        intervention.RotateLayer.Weight().ToArray().CopyTo(intervention.LearnedSource.Weight.AsSpan<float>());
        intervention.LearnedSource.Bias!.AsSpan<float>().Clear();
        var h = Tensor.Randn(new Generator(8), 4, Hidden);
        var expected = h.ToArray();
        var actual = intervention.Forward(h).ToArray();
        for (int k = 0; k < expected.Length; k++) Assert.AreEqual(expected[k], actual[k], 1e-6, $"element {k}");
    }

    [TestMethod]
    [DataRow(ReftInterventionType.Loreft)]
    [DataRow(ReftInterventionType.Direft)]
    public void Gradients_OfVWAndB_MatchFiniteDifferencesInDouble(ReftInterventionType type)
    {
        bool loreft = type == ReftInterventionType.Loreft;
        var intervention = new ReftIntervention(type, Rank, Hidden, new Generator(9));
        var h = Tensor.Randn(new Generator(10), 5, Hidden);
        var projection = Tensor.Randn(new Generator(11), 5, Hidden);
        intervention.Forward(h).Mul(projection).Sum().Backward();

        var v = ReftMath.ToDouble(intervention.RotateLayer.Householder.ToArray());
        var w = ReftMath.ToDouble(intervention.LearnedSource.Weight.ToArray());
        var b = ReftMath.ToDouble(intervention.LearnedSource.Bias!.ToArray());
        var hv = ReftMath.ToDouble(h.ToArray());
        var pv = ReftMath.ToDouble(projection.ToArray());
        double Loss()
        {
            var rot = ReftMath.Rotation(v, Rank, Hidden);
            double sum = 0;
            for (int p = 0; p < 5; p++)
            {
                var y = ReftMath.Phi(loreft, rot, w, b, hv[(p * Hidden)..((p + 1) * Hidden)], Rank, Hidden);
                for (int j = 0; j < Hidden; j++) sum += y[j] * pv[p * Hidden + j];
            }
            return sum;
        }

        foreach (var (name, values, grad) in new[]
        {
            ("V", v, intervention.RotateLayer.Householder.Grad!),
            ("W", w, intervention.LearnedSource.Weight.Grad!),
            ("b", b, intervention.LearnedSource.Bias!.Grad!),
        })
        {
            var analytic = grad.ToArray();
            for (int k = 0; k < values.Length; k++)
            {
                double original = values[k];
                const double eps = 1e-6;
                values[k] = original + eps;
                double plus = Loss();
                values[k] = original - eps;
                double minus = Loss();
                values[k] = original;
                double numeric = (plus - minus) / (2 * eps);
                Assert.AreEqual(numeric, analytic[k], 1e-4 + 1e-4 * Math.Abs(numeric), $"{type} d loss / d {name}[{k}]");
            }
        }
        // Entries of V on and before the diagonal do not enter R: their gradient is exactly zero.
        var gv = intervention.RotateLayer.Householder.Grad!.ToArray();
        for (int i = 0; i < Rank; i++)
        {
            for (int j = 0; j <= i; j++) Assert.AreEqual(0f, gv[i * Hidden + j], $"dV[{i}, {j}]");
        }
    }
}
