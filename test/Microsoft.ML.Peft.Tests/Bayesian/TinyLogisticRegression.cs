using MathNet.Numerics.LinearAlgebra;

namespace Microsoft.ML.Peft.Tests.Bayesian;

/// <summary>
/// A tiny Bayesian logistic regression solved exactly in the test: MAP by Newton's method, the exact Hessian of the
/// summed negative log-likelihood H = Σ p(1−p)·x·xᵀ (a GLM, so the GGN equals the Hessian), and the brute-force
/// Laplace evidence log p(y|θ*) − ½λ‖θ*‖² + ½d·log λ − ½ log det(H + λI) with MathNet's Cholesky.
/// </summary>
internal sealed class TinyLogisticRegression
{
    public const int Count = 60, Dimension = 3;

    public TinyLogisticRegression(double mapPriorPrecision = 1.0, int seed = 17)
    {
        var random = new Random(seed);
        double[] truth = [0.5, 1.5, -1.0];
        X = Matrix<double>.Build.Dense(Count, Dimension, (i, j) => j == 0 ? 1 : 2 * random.NextDouble() - 1);
        Y = new double[Count];
        for (int i = 0; i < Count; i++)
        {
            double z = 0;
            for (int j = 0; j < Dimension; j++) z += truth[j] * X[i, j];
            Y[i] = random.NextDouble() < 1 / (1 + Math.Exp(-z)) ? 1 : 0;
        }
        var w = Vector<double>.Build.Dense(Dimension);
        for (int iteration = 0; iteration < 50; iteration++)
        {
            (Vector<double> gradient, Matrix<double> hessian) = GradientAndHessian(w);
            gradient += mapPriorPrecision * w;
            hessian += mapPriorPrecision * Matrix<double>.Build.DenseIdentity(Dimension);
            w -= hessian.Solve(gradient);
        }
        Map = w.ToArray();
        Hessian = GradientAndHessian(w).Hessian;
        Assert.IsTrue((GradientAndHessian(w).Gradient + mapPriorPrecision * w).L2Norm() < 1e-12, "Newton converged");
        LogLikelihood = 0;
        for (int i = 0; i < Count; i++)
        {
            double z = X.Row(i) * w;
            // log σ(z) = −log(1 + e^{−z}); log(1 − σ(z)) = −log(1 + e^{z}).
            LogLikelihood -= Y[i] == 1 ? Math.Log(1 + Math.Exp(-z)) : Math.Log(1 + Math.Exp(z));
        }
    }

    public Matrix<double> X { get; }

    public double[] Y { get; }

    public double[] Map { get; }

    /// <summary>Σ_n p_n(1 − p_n)·x_n·x_nᵀ at the MAP (sum over the data, not the mean).</summary>
    public Matrix<double> Hessian { get; }

    public double LogLikelihood { get; }

    public double BruteForceEvidence(double lambda, Matrix<double> curvature)
    {
        var w = Vector<double>.Build.DenseOfArray(Map);
        var precision = curvature + lambda * Matrix<double>.Build.DenseIdentity(Dimension);
        return LogLikelihood - 0.5 * lambda * (w * w) + 0.5 * Dimension * Math.Log(lambda) - 0.5 * precision.Cholesky().DeterminantLn;
    }

    private (Vector<double> Gradient, Matrix<double> Hessian) GradientAndHessian(Vector<double> w)
    {
        var gradient = Vector<double>.Build.Dense(Dimension);
        var hessian = Matrix<double>.Build.Dense(Dimension, Dimension);
        for (int i = 0; i < Count; i++)
        {
            var x = X.Row(i);
            double p = 1 / (1 + Math.Exp(-(x * w)));
            gradient += (p - Y[i]) * x;
            hessian += p * (1 - p) * x.OuterProduct(x);
        }
        return (gradient, hessian);
    }
}
