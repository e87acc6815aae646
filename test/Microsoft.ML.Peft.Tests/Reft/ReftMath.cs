namespace Microsoft.ML.Peft.Tests.Reft;

/// <summary>
/// ReFT written out in double with full matrices — an implementation independent of the engine's (which applies
/// rank-one updates to an r×d matrix in float32): R = (H_0⋯H_{r−1}·I_{d×r})ᵀ with every H_i formed as a d×d matrix,
/// then Φ(h) = h + Rᵀ(W·h + b − R·h) (LoReFT) or h + Rᵀ(W·h + b) (DiReFT).
/// </summary>
internal static class ReftMath
{
    /// <summary>R [r, d] (row-major) from the Householder parameter V [r, d].</summary>
    public static double[] Rotation(double[] v, int r, int d)
    {
        // Q starts as the identity and is multiplied on the right by H_0, H_1, ...; R = first r columns of Q, transposed.
        var q = new double[d * d];
        for (int i = 0; i < d; i++) q[i * d + i] = 1;
        for (int i = 0; i < r; i++)
        {
            var u = new double[d];
            u[i] = 1;
            for (int j = i + 1; j < d; j++) u[j] = v[i * d + j];
            double norm2 = 0;
            foreach (double x in u) norm2 += x * x;
            var h = new double[d * d];
            for (int a = 0; a < d; a++)
            {
                for (int c = 0; c < d; c++) h[a * d + c] = (a == c ? 1 : 0) - 2 * u[a] * u[c] / norm2;
            }
            var next = new double[d * d];
            for (int a = 0; a < d; a++)
            {
                for (int c = 0; c < d; c++)
                {
                    double s = 0;
                    for (int k = 0; k < d; k++) s += q[a * d + k] * h[k * d + c];
                    next[a * d + c] = s;
                }
            }
            q = next;
        }
        var rot = new double[r * d];
        for (int i = 0; i < r; i++)
        {
            for (int j = 0; j < d; j++) rot[i * d + j] = q[j * d + i];
        }
        return rot;
    }

    /// <summary>Φ(h) for one vector h [d].</summary>
    public static double[] Phi(bool loreft, double[] rot, double[] w, double[] b, double[] h, int r, int d)
    {
        var result = (double[])h.Clone();
        for (int i = 0; i < r; i++)
        {
            double coefficient = b[i];
            for (int j = 0; j < d; j++) coefficient += (w[i * d + j] - (loreft ? rot[i * d + j] : 0)) * h[j];
            for (int j = 0; j < d; j++) result[j] += rot[i * d + j] * coefficient;
        }
        return result;
    }

    public static double[] ToDouble(float[] values) => values.Select(v => (double)v).ToArray();
}
