using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.Peft.LinearAlgebra;
using static Microsoft.ML.Peft.Tests.LinearAlgebra.TestMatrices;

namespace Microsoft.ML.Peft.Tests.LinearAlgebra;

[TestClass]
public sealed class TriangularSolveTests
{
    private const int N = 9;

    private static Matrix<double> RandomLower()
    {
        var m = ToMathNet(Gaussian(N, N, seed: 5), N, N).LowerTriangle();
        for (int i = 0; i < N; i++) m[i, i] = 2 + Math.Abs(m[i, i]);
        return m;
    }

    [TestMethod]
    public void Lower_LowerTransposed_Upper_MatchMathNetSolves()
    {
        var l = RandomLower();
        var b = ToMathNet(Gaussian(N, 4, seed: 6), N, 4);
        double[] lower = RowMajor(l);

        double[] x = RowMajor(b);
        TriangularSolve.SolveLower(lower, N, x, 4);
        AssertClose(RowMajor(l.Solve(b)), x, 1e-12, "L⁻¹B");

        x = RowMajor(b);
        TriangularSolve.SolveLowerTransposed(lower, N, x, 4);
        AssertClose(RowMajor(l.Transpose().Solve(b)), x, 1e-12, "L⁻ᵀB");

        double[] upper = RowMajor(l.Transpose());
        x = RowMajor(b);
        TriangularSolve.SolveUpper(upper, N, x, 4);
        AssertClose(RowMajor(l.Transpose().Solve(b)), x, 1e-12, "U⁻¹B");
    }

    [TestMethod]
    public void HandComputed()
    {
        // [[2, 0], [1, 4]] x = [2, 9] ⇒ x = [1, 2].
        double[] x = [2, 9];
        TriangularSolve.SolveLower([2, 0, 1, 4], 2, x);
        AssertClose([1, 2], x, 0, "x");
    }

    [TestMethod]
    public void SingularTriangle_Throws()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => TriangularSolve.SolveLower([1, 0, 1, 0], 2, new double[2]));
        StringAssert.Contains(ex.Message, "diagonal entry 1");
    }
}
