using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.Peft.Bayesian;
using static Microsoft.ML.Peft.Tests.LinearAlgebra.TestMatrices;

namespace Microsoft.ML.Peft.Tests.Bayesian;

[TestClass]
public sealed class LaplaceMarginalLikelihoodTests
{
    private static readonly TinyLogisticRegression Model = new();

    private static FullLaplace FullPosterior() =>
        new("logreg", Model.Map, RowMajor(Model.Hessian / TinyLogisticRegression.Count), TinyLogisticRegression.Count);

    [TestMethod]
    [DataRow(0.01)]
    [DataRow(1.0)]
    [DataRow(25.0)]
    public void FullLaplace_EvidenceEqualsTheBruteForceLogisticRegressionEvidence(double lambda)
    {
        double expected = Model.BruteForceEvidence(lambda, Model.Hessian);
        double actual = LaplaceMarginalLikelihood.Evaluate(Model.LogLikelihood, [FullPosterior()], lambda);
        Assert.AreEqual(expected, actual, 1e-10);
    }

    [TestMethod]
    public void DiagonalLaplace_EvidenceEqualsBruteForceWithTheDiagonalHessian()
    {
        var diagonal = Matrix<double>.Build.DiagonalOfDiagonalVector(Model.Hessian.Diagonal());
        var block = new DiagonalLaplace("logreg", Model.Map, (Model.Hessian.Diagonal() / TinyLogisticRegression.Count).ToArray(), TinyLogisticRegression.Count);
        Assert.AreEqual(Model.BruteForceEvidence(2.5, diagonal), LaplaceMarginalLikelihood.Evaluate(Model.LogLikelihood, [block], 2.5), 1e-10);
    }

    [TestMethod]
    public void LayerwiseEvidence_SumsBlockTerms_KfacPlusDiagonal()
    {
        var g = KroneckerFactorEigenbasis.FromSymmetricMatrix(Spd(2, seed: 50, shift: 0.1), 2);
        var a = KroneckerFactorEigenbasis.FromSymmetricMatrix(Spd(3, seed: 51, shift: 0.1), 3);
        double[] w = Gaussian(1, 6, seed: 52), theta = Gaussian(1, 4, seed: 53);
        double[] fisher = Gaussian(1, 4, seed: 54).Select(Math.Abs).ToArray();
        var kfac = new KfacLaplaceLayer("kfac", w, g, a, 20);
        var diag = new DiagonalLaplace("diag", theta, fisher, 20);
        const double logLik = -12.5, lambdaK = 0.3, lambdaD = 4.0;

        var pk = 20 * ToMathNet(g.ToMatrix(), 2, 2).KroneckerProduct(ToMathNet(a.ToMatrix(), 3, 3)) + lambdaK * Matrix<double>.Build.DenseIdentity(6);
        var pd = Matrix<double>.Build.DiagonalOfDiagonalArray(fisher.Select(f => 20 * f + lambdaD).ToArray());
        double expected = logLik
            - 0.5 * (lambdaK * w.Sum(x => x * x) - 6 * Math.Log(lambdaK) + pk.Cholesky().DeterminantLn)
            - 0.5 * (lambdaD * theta.Sum(x => x * x) - 4 * Math.Log(lambdaD) + pd.Cholesky().DeterminantLn);
        Assert.AreEqual(expected, LaplaceMarginalLikelihood.Evaluate(logLik, [kfac, diag], [lambdaK, lambdaD]), 1e-11);
        kfac.PriorPrecision = lambdaK;
        diag.PriorPrecision = lambdaD;
        Assert.AreEqual(expected, LaplaceMarginalLikelihood.Evaluate(logLik, [kfac, diag]), 1e-11);
    }

    [TestMethod]
    public void Derivatives_MatchFiniteDifferencesInLogLambda()
    {
        FullLaplace block = FullPosterior();
        foreach (double lambda in new[] { 0.05, 1.0, 30.0 })
        {
            double u = Math.Log(lambda), h = 1e-4;
            double f(double uu) => LaplaceMarginalLikelihood.BlockTerm(block, Math.Exp(uu));
            double first = (f(u + h) - f(u - h)) / (2 * h);
            double second = (f(u + h) - 2 * f(u) + f(u - h)) / (h * h);
            (double analyticFirst, double analyticSecond) = LaplaceMarginalLikelihood.BlockTermDerivatives(block, lambda);
            Assert.AreEqual(first, analyticFirst, 1e-8 * Math.Max(1, Math.Abs(first)), $"f′ at λ={lambda}");
            Assert.AreEqual(second, analyticSecond, 1e-5 * Math.Max(1, Math.Abs(second)), $"f″ at λ={lambda}");
        }
    }

    [TestMethod]
    public void BadArguments_AreRejected()
    {
        FullLaplace block = FullPosterior();
        Assert.ThrowsExactly<ArgumentException>(() => LaplaceMarginalLikelihood.Evaluate(0, [block], [1.0, 2.0]));
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => LaplaceMarginalLikelihood.Evaluate(0, [block], -1.0));
        StringAssert.Contains(ex.Message, "logreg");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => LaplaceMarginalLikelihood.Evaluate(double.NaN, [block], 1.0));
    }
}
