using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.LinearAlgebra;
using static Microsoft.ML.Peft.Tests.LinearAlgebra.TestMatrices;

namespace Microsoft.ML.Peft.Tests.Bayesian;

/// <summary>Every K-FAC quantity against the brute-force dense precision P = N·(G ⊗ A) + λI built with MathNet.</summary>
[TestClass]
public sealed class KfacLaplaceLayerTests
{
    private const double N = 37, Lambda = 0.7;

    /// <summary>A layer with in = 3 (+ bias = 4) and out = 2; or a low-rank variant (in = 6 kept at rank 2, out = 3 at rank 2).</summary>
    private static (KfacLaplaceLayer Layer, Matrix<double> Precision, double[] Mean) Build(bool lowRank)
    {
        int inWidth = lowRank ? 6 : 3, outWidth = lowRank ? 3 : 2;
        var a = new KroneckerFactorAccumulator(inWidth, appendBias: !lowRank, lowRankThreshold: lowRank ? 5 : 512, lowRankRank: 2, name: "A");
        var g = new KroneckerFactorAccumulator(outWidth, lowRankThreshold: lowRank ? 3 : 512, lowRankRank: 2, name: "G");
        a.AddRows(Gaussian(9, inWidth, seed: 20), 9);
        a.AddRows(Gaussian(4, inWidth, seed: 21), 4);
        g.AddRows(Gaussian(13, outWidth, seed: 22), 13);
        KroneckerFactorEigenbasis ea = a.ToEigenbasis(), eg = g.ToEigenbasis();
        Assert.AreEqual(lowRank, ea.IsLowRank);
        Assert.AreEqual(lowRank, eg.IsLowRank);
        int d = a.Size * g.Size;
        double[] mean = Gaussian(1, d, seed: 23);
        var layer = new KfacLaplaceLayer("q_proj", mean, eg, ea, N) { PriorPrecision = Lambda };
        // Dense reference from the (possibly truncated) factors the layer was given.
        var gm = ToMathNet(eg.ToMatrix(), g.Size, g.Size);
        var am = ToMathNet(ea.ToMatrix(), a.Size, a.Size);
        var precision = N * gm.KroneckerProduct(am) + Lambda * Matrix<double>.Build.DenseIdentity(d);
        if (!lowRank)
        {
            // For exact factors the eigenbases must reproduce the accumulated means themselves.
            AssertClose(a.MeanMatrix(), RowMajor(am), 1e-13, "A");
            AssertClose(g.MeanMatrix(), RowMajor(gm), 1e-13, "G");
        }
        return (layer, precision, mean);
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void LogDet_AndEffectiveParameters_MatchDense(bool lowRank)
    {
        (KfacLaplaceLayer layer, Matrix<double> p, _) = Build(lowRank);
        int d = layer.ParameterCount;
        PrecisionSpectrumTerms terms = layer.SpectrumTerms(Lambda);
        Assert.AreEqual(p.Cholesky().DeterminantLn, terms.LogDeterminant, 1e-11);
        Assert.AreEqual(p.Cholesky().DeterminantLn, layer.LogDetPosteriorPrecision(), 1e-11);
        var inverse = p.Inverse();
        double trace = inverse.Trace(), traceSquared = (inverse * inverse).Trace();
        Assert.AreEqual(d - Lambda * trace, terms.EffectiveParameters, 1e-11);
        Assert.AreEqual(Lambda * trace - Lambda * Lambda * traceSquared, terms.EffectiveParametersDecay, 1e-11);
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void CovariancePrecisionAndQuadraticForms_MatchDense(bool lowRank)
    {
        (KfacLaplaceLayer layer, Matrix<double> p, _) = Build(lowRank);
        int d = layer.ParameterCount;
        var sigma = p.Inverse();
        double[] v = Gaussian(1, d, seed: 30);
        var result = new double[d];
        layer.CovarianceTimes(v, result);
        AssertClose(RowMajor(sigma * ToMathNet(v, d, 1)), result, 1e-12, "Σv");
        layer.PrecisionTimes(v, result);
        AssertClose(RowMajor(p * ToMathNet(v, d, 1)), result, 1e-11, "Pv");
        var vm = Vector<double>.Build.DenseOfArray(v);
        Assert.AreEqual(vm * (sigma * vm), layer.CovarianceQuadraticForm(v), 1e-12);

        // Three output gradients at once: J Σ Jᵀ.
        double[] j = Gaussian(3, d, seed: 31);
        var jm = ToMathNet(j, 3, d);
        AssertClose(RowMajor(jm * sigma * jm.Transpose()), layer.ProjectedCovariance(j, 3), 1e-12, "JΣJᵀ");
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void LinearOutputCovariance_EqualsTheJacobianProjection(bool lowRank)
    {
        (KfacLaplaceLayer layer, Matrix<double> p, _) = Build(lowRank);
        int inSize = layer.InputSize, outSize = layer.OutputSize, d = layer.ParameterCount;
        double[] x = Gaussian(1, inSize, seed: 40);
        if (!lowRank) x[inSize - 1] = 1; // the bias input
        // Jacobian of f_o = Σ_i W[o,i] x_i with respect to vec(W): row o is e_o ⊗ x.
        var jacobian = Matrix<double>.Build.Dense(outSize, d, (o, k) => k / inSize == o ? x[k % inSize] : 0);
        var expected = jacobian * p.Inverse() * jacobian.Transpose();
        AssertClose(RowMajor(expected), layer.LinearOutputCovariance(x), 1e-12, "Cov(Wx)");
        double[] direction = Gaussian(1, outSize, seed: 41);
        var u = Vector<double>.Build.DenseOfArray(direction);
        Assert.AreEqual(u * (expected * u), layer.LinearOutputVariance(x, direction), 1e-12);
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void Sampling_UsesTheSymmetricSquareRootOfTheCovariance(bool lowRank)
    {
        (KfacLaplaceLayer layer, Matrix<double> p, double[] mean) = Build(lowRank);
        int d = layer.ParameterCount;
        // Dense Σ^{1/2} = Q diag(1/√μ) Qᵀ from MathNet's eigendecomposition of P.
        var evd = p.Evd(Symmetricity.Symmetric);
        var root = evd.EigenVectors * Matrix<double>.Build.DiagonalOfDiagonalVector(evd.EigenValues.Map(c => 1 / Math.Sqrt(c.Real)))
                   * evd.EigenVectors.Transpose();
        var z = new double[d];
        new GaussianRandom(77).FillStandardNormal(z);
        var expected = Vector<double>.Build.DenseOfArray(mean) + root * Vector<double>.Build.DenseOfArray(z);
        var sample = new double[d];
        layer.Sample(new GaussianRandom(77), sample);
        AssertClose(expected.ToArray(), sample, 1e-12, "W*+Σ^½z");

        // Statistical check of the whole sampler: the empirical covariance of 40k draws approaches Σ.
        var sigma = p.Inverse();
        var random = new GaussianRandom(5);
        var sum = Matrix<double>.Build.Dense(d, d);
        const int draws = 40_000;
        for (int s = 0; s < draws; s++)
        {
            layer.Sample(random, sample);
            var delta = Vector<double>.Build.DenseOfArray(sample) - Vector<double>.Build.DenseOfArray(mean);
            sum += delta.OuterProduct(delta);
        }
        var empirical = sum / draws;
        for (int i = 0; i < d; i++)
        {
            for (int k = 0; k < d; k++)
            {
                // Standard error of a sample covariance: √((Σ_ii Σ_kk + Σ_ik²)/n); allow 5 of them.
                double se = Math.Sqrt((sigma[i, i] * sigma[k, k] + sigma[i, k] * sigma[i, k]) / draws);
                Assert.AreEqual(sigma[i, k], empirical[i, k], 5 * se, $"Σ[{i},{k}]");
            }
        }
    }

    [TestMethod]
    public void PriorMean_EntersTheScatterOnly()
    {
        var eig = KroneckerFactorEigenbasis.FromSymmetricMatrix([2], 1);
        var layer = new KfacLaplaceLayer("w", [3, 4], eig, KroneckerFactorEigenbasis.FromSymmetricMatrix([1, 0, 0, 1], 2), 1, priorMean: [1, 1]);
        Assert.AreEqual(4 + 9, layer.ScatterFromPriorMean, 1e-15);
        Assert.AreEqual(2 * Math.Log(2 + 1), layer.SpectrumTerms(1).LogDeterminant, 1e-15);
    }

    [TestMethod]
    public void ShapeErrors_NameTheLayer()
    {
        var g = KroneckerFactorEigenbasis.FromSymmetricMatrix([1, 0, 0, 1], 2);
        var a = KroneckerFactorEigenbasis.FromSymmetricMatrix([1, 0, 0, 0, 1, 0, 0, 0, 1], 3);
        var ex = Assert.ThrowsExactly<ArgumentException>(() => new KfacLaplaceLayer("layers.3.v_proj", new double[5], g, a, 10));
        StringAssert.Contains(ex.Message, "layers.3.v_proj");
        StringAssert.Contains(ex.Message, "2×3");
        var layer = new KfacLaplaceLayer("layers.3.v_proj", new double[6], g, a, 10);
        Assert.ThrowsExactly<ArgumentException>(() => layer.LinearOutputCovariance(new double[2]));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => layer.PriorPrecision = 0);
    }
}
