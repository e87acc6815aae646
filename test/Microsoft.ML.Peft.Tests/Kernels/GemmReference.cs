namespace Microsoft.ML.Peft.Tests.Kernels;

/// <summary>
/// Naive double-precision GEMM and a rounding-error bound to compare the fast kernels against.
/// </summary>
/// <remarks>
/// The bound is the classical one for a float dot product of length k accumulated in any order:
/// |fl(Σ aᵢbᵢ) − Σ aᵢbᵢ| ≤ γ_k Σ|aᵢbᵢ| with γ_k ≈ k·2⁻²⁴, plus one rounding each for alpha, beta·C and the sum;
/// it is scaled by k and by the magnitudes actually multiplied, so it is tight for every shape.
/// </remarks>
internal static class GemmReference
{
    private const double UnitRoundoff = 1.0 / (1 << 24);

    /// <summary>Element (i, p) of op(A) for a row-major A with row stride ld.</summary>
    public static double At(float[] x, bool trans, int ld, int row, int col) => trans ? x[col * ld + row] : x[row * ld + col];

    /// <summary>
    /// Checks <paramref name="actual"/> (the kernel's C) against alpha·op(A)·op(B) + beta·C0 computed in double, and that
    /// C's padding columns (ldc beyond n) were left exactly as they were in <paramref name="c0"/>.
    /// </summary>
    public static void AssertProduct(string label, bool transA, bool transB, int m, int n, int k,
        float alpha, float[] a, int lda, Func<int, int, double> opB, float beta, float[] c0, float[] actual, int ldc)
    {
        var rowA = new double[k];
        for (int i = 0; i < m; i++)
        {
            for (int p = 0; p < k; p++) rowA[p] = At(a, transA, lda, i, p);
            for (int j = 0; j < n; j++)
            {
                double sum = 0, magnitude = 0;
                for (int p = 0; p < k; p++)
                {
                    double term = rowA[p] * opB(p, j);
                    sum += term;
                    magnitude += Math.Abs(term);
                }
                double cOld = beta == 0f ? 0 : c0[i * ldc + j];
                double expected = alpha * sum + beta * cOld;
                double tolerance = (k + 4) * UnitRoundoff * (Math.Abs(alpha) * magnitude + Math.Abs(beta * cOld)) + 1e-30;
                double got = actual[i * ldc + j];
                if (!(Math.Abs(got - expected) <= tolerance))
                {
                    Assert.Fail($"{label}: C[{i},{j}] = {got:R}, expected {expected:R} ± {tolerance:E2} " +
                        $"(m={m} n={n} k={k} transA={transA} transB={transB} alpha={alpha} beta={beta})");
                }
            }
            for (int j = n; j < ldc && i * ldc + j < actual.Length; j++)
            {
                if (BitConverter.SingleToInt32Bits(actual[i * ldc + j]) != BitConverter.SingleToInt32Bits(c0[i * ldc + j]))
                    Assert.Fail($"{label}: padding C[{i},{j}] was overwritten (ldc={ldc}, n={n}).");
            }
        }
    }

    /// <summary>fp32 B accessor for <see cref="AssertProduct"/>.</summary>
    public static Func<int, int, double> OpB(float[] b, bool transB, int ldb) => (p, j) => At(b, transB, ldb, p, j);

    /// <summary>
    /// A rows×cols matrix with row stride ld, entries uniform in [-1, 1) and every padding element NaN, so a kernel
    /// that reads past a row's width poisons its result.
    /// </summary>
    public static float[] RandomMatrix(Random random, int rows, int cols, int ld)
    {
        var x = new float[Math.Max(rows * ld, 1)];
        for (int r = 0; r < rows; r++)
            for (int q = 0; q < ld; q++)
                x[r * ld + q] = q < cols ? (float)(random.NextDouble() * 2 - 1) : float.NaN;
        return x;
    }

    /// <summary>C for beta = 0: NaN everywhere, which the kernel must overwrite without reading.</summary>
    public static float[] NaNMatrix(int rows, int ld)
    {
        var x = new float[Math.Max(rows * ld, 1)];
        Array.Fill(x, float.NaN);
        return x;
    }
}
