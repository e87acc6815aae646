using MathNet.Numerics.LinearAlgebra;

namespace Microsoft.ML.Peft.Tests.LinearAlgebra;

/// <summary>Seeded test matrices and MathNet conversions/comparisons shared by the linear-algebra tests.</summary>
internal static class TestMatrices
{
    public static double[] Gaussian(int rows, int cols, int seed)
    {
        var random = new Random(seed);
        var data = new double[rows * cols];
        for (int i = 0; i < data.Length; i++)
        {
            // Box–Muller on System.Random: an independent generator from the library's GaussianRandom.
            double u1 = 1 - random.NextDouble(), u2 = random.NextDouble();
            data[i] = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }
        return data;
    }

    public static Matrix<double> ToMathNet(double[] data, int rows, int cols) =>
        Matrix<double>.Build.DenseOfRowMajor(rows, cols, data);

    public static double[] RowMajor(Matrix<double> m) => m.ToRowMajorArray();

    /// <summary>B·Bᵀ + shift·I for a Gaussian B: symmetric positive definite when shift &gt; 0.</summary>
    public static double[] Spd(int n, int seed, double shift = 1.0)
    {
        var b = ToMathNet(Gaussian(n, n, seed), n, n);
        return RowMajor(b * b.Transpose() + shift * Matrix<double>.Build.DenseIdentity(n));
    }

    public static double[] Symmetric(int n, int seed)
    {
        var b = ToMathNet(Gaussian(n, n, seed), n, n);
        return RowMajor(0.5 * (b + b.Transpose()));
    }

    /// <summary>A random orthogonal n×k matrix (Q of a Gaussian matrix's QR, by MathNet).</summary>
    public static Matrix<double> RandomOrthonormalColumns(int n, int k, int seed) =>
        ToMathNet(Gaussian(n, k, seed), n, k).QR(MathNet.Numerics.LinearAlgebra.Factorization.QRMethod.Thin).Q;

    /// <summary>U·diag(σ)·Vᵀ with random orthonormal U (m×k) and V (n×k): a matrix with exactly the given singular values.</summary>
    public static double[] WithSingularValues(int m, int n, double[] sigma, int seed)
    {
        int k = sigma.Length;
        var u = RandomOrthonormalColumns(m, k, seed);
        var v = RandomOrthonormalColumns(n, k, seed + 1);
        return RowMajor(u * Matrix<double>.Build.DiagonalOfDiagonalArray(sigma) * v.Transpose());
    }

    public static void AssertClose(double[] expected, ReadOnlySpan<double> actual, double tolerance, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, $"{what}: length");
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.AreEqual(expected[i], actual[i], tolerance, $"{what}[{i}]");
        }
    }

    public static double MaxAbsDiff(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        Assert.AreEqual(a.Length, b.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }

    /// <summary>Column j of a row-major matrix.</summary>
    public static double[] Column(ReadOnlySpan<double> m, int rows, int cols, int j)
    {
        var c = new double[rows];
        for (int i = 0; i < rows; i++) c[i] = m[i * cols + j];
        return c;
    }

    /// <summary>Asserts two vectors are equal up to a global sign (eigen/singular vectors are defined up to ±).</summary>
    public static void AssertEqualUpToSign(double[] expected, double[] actual, double tolerance, string what)
    {
        double dot = 0;
        for (int i = 0; i < expected.Length; i++) dot += expected[i] * actual[i];
        double sign = dot < 0 ? -1 : 1;
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.AreEqual(expected[i], sign * actual[i], tolerance, $"{what}[{i}]");
        }
    }

    /// <summary>max |QᵀQ − I| for a row-major rows×cols matrix Q.</summary>
    public static double OrthonormalityError(ReadOnlySpan<double> q, int rows, int cols)
    {
        var m = ToMathNet(q.ToArray(), rows, cols);
        var gram = m.Transpose() * m - Matrix<double>.Build.DenseIdentity(cols);
        return gram.Enumerate().Max(Math.Abs);
    }
}
