using System.Numerics;

namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// The standard normal CDF Φ(x) = ½·erfc(−x/√2), evaluated in double precision so that GELU(x) = x·Φ(x) rounds
/// correctly to float (max error of the approximations below ≈ 2e−12 relative, far under float's 6e−8).
/// </summary>
/// <remarks>
/// .NET has no erf. With z = x/√2: for |z| &lt; 1, erf(z) = z·P(z²) (degree-10 polynomial); for 1 ≤ |z| ≤ 6,
/// erfc(|z|) = e^(−z²)·Q(1/|z|) (degree-16 polynomial in 1/|z|); beyond 6 the first 13 terms of the asymptotic
/// series. Both polynomials are Chebyshev least-squares fits made for this project against Python's math.erf/erfc
/// (script: build/reference/fit_erf.py). Using erfc for the tails keeps full relative precision of Φ(x) for very
/// negative x, where 1 + erf(z) would cancel. The vector path evaluates every branch and selects per lane.
/// </remarks>
internal static class NormalDistribution
{
    // erf(z)/z = Σ A[i]·(z²)^i on |z| < 1.
    private static readonly double[] A =
    [
        1.1283791670955121e+00, -3.7612638903174850e-01, 1.1283791670606295e-01, -2.6866170590183557e-02,
        5.2239771791805041e-03, -8.5483058365029715e-04, 1.2054704424024414e-04, -1.4913625751215805e-05,
        1.6313192597127653e-06, -1.5202006932007802e-07, 9.4568631767315361e-09,
    ];

    // erfc(z)·e^(z²) = Σ B[i]·(1/z)^i on 1 ≤ z ≤ 6.
    private static readonly double[] B =
    [
        6.9127684149128399e-07, 5.6415821043619840e-01, 6.5573783993159995e-04, -2.9046667621102817e-01,
        7.2933780568601170e-02, -3.4738487844911847e-02, 2.1260347566969466e+00, -8.3924331042518716e+00,
        1.8430251512661165e+01, -2.7988885097837404e+01, 3.1422416069003937e+01, -2.6578350249104343e+01,
        1.6837609435996768e+01, -7.7772474326198235e+00, 2.4789488709137903e+00, -4.8805895440929931e-01,
        4.4754513040328993e-02,
    ];

    // erfc(z)·e^(z²)·z·√π = Σ (−1)^n·(2n−1)!!·u^n with u = 1/(2z²): the asymptotic series, 13 terms (z > 6: ≤ 1e−11).
    private static readonly double[] Asymptotic = CreateAsymptotic(13);

    private const double InvSqrt2 = 0.70710678118654752440;
    private const double InvSqrtPi = 0.56418958354775628695;

    /// <summary>1/√(2π), the normal density at 0.</summary>
    public const double InvSqrt2Pi = 0.39894228040143267794;

    /// <summary>erf(z) for any z.</summary>
    public static double Erf(double z)
    {
        double a = Math.Abs(z);
        if (a < 1) return z * Horner(A, z * z);
        double r = 1 - ErfcPositive(a);
        return z < 0 ? -r : r;
    }

    /// <summary>Φ(x), the standard normal CDF.</summary>
    public static double Cdf(double x)
    {
        double z = x * InvSqrt2;
        double a = Math.Abs(z);
        if (a < 1) return 0.5 + 0.5 * z * Horner(A, z * z);
        double tail = 0.5 * ErfcPositive(a);
        return z > 0 ? 1 - tail : tail;
    }

    /// <summary>Φ(x) for each lane.</summary>
    public static Vector<double> Cdf(Vector<double> x)
    {
        var z = x * InvSqrt2;
        var a = Vector.Abs(z);
        var z2 = z * z;
        var half = new Vector<double>(0.5);
        var inner = half + half * z * Horner(A, z2);
        var t = Vector<double>.One / Vector.Max(a, Vector<double>.One);
        var poly = Horner(B, t);
        var asymptotic = t * InvSqrtPi * Horner(Asymptotic, 0.5 * t * t);
        var e = Vector.Exp(-Vector.Min(z2, new Vector<double>(700)));
        var tail = 0.5 * e * Vector.ConditionalSelect(Vector.GreaterThan(a, new Vector<double>(6)), asymptotic, poly);
        var outer = Vector.ConditionalSelect(Vector.GreaterThan(z, Vector<double>.Zero), Vector<double>.One - tail, tail);
        return Vector.ConditionalSelect(Vector.LessThan(a, Vector<double>.One), inner, outer);
    }

    private static double[] CreateAsymptotic(int terms)
    {
        var c = new double[terms];
        double doubleFactorial = 1;
        for (int n = 0; n < terms; n++)
        {
            c[n] = (n % 2 == 0 ? 1 : -1) * doubleFactorial;
            doubleFactorial *= 2 * n + 1;
        }
        return c;
    }

    private static double ErfcPositive(double a)
    {
        double t = 1 / a;
        double poly = a <= 6 ? Horner(B, t) : t * InvSqrtPi * Horner(Asymptotic, 0.5 * t * t);
        return Math.Exp(-a * a) * poly;
    }

    private static double Horner(double[] c, double x)
    {
        double r = c[^1];
        for (int i = c.Length - 2; i >= 0; i--) r = r * x + c[i];
        return r;
    }

    private static Vector<double> Horner(double[] c, Vector<double> x)
    {
        var r = new Vector<double>(c[^1]);
        for (int i = c.Length - 2; i >= 0; i--) r = Vector.FusedMultiplyAdd(r, x, new Vector<double>(c[i]));
        return r;
    }
}
