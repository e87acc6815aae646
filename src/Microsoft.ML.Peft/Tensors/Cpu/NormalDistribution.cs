using System.Runtime.Intrinsics;

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
/// negative x, where 1 + erf(z) would cancel. The AVX-512 path (8 doubles per vector, with its own exp) evaluates only
/// the branches some lane needs and selects per lane.
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

    // 1/n! for n = 0..12: the Taylor series of e^r.
    private static readonly double[] ExpTaylor = CreateExpTaylor(13);

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

    /// <summary>Φ(x) for each lane. Branches are evaluated only when some lane needs them.</summary>
    public static Vector512<double> Cdf(Vector512<double> x) => Cdf(x, out _, withDensity: false);

    /// <summary>Φ(x) and the density φ(x) = e^(−x²/2)/√(2π) for each lane (GELU backward needs both).</summary>
    public static Vector512<double> Cdf(Vector512<double> x, out Vector512<double> density) => Cdf(x, out density, withDensity: true);

    private static Vector512<double> Cdf(Vector512<double> x, out Vector512<double> density, bool withDensity)
    {
        var one = Vector512<double>.One;
        var z = x * InvSqrt2;
        var a = Vector512.Abs(z);
        var z2 = z * z;
        var isInner = Vector512.LessThan(a, one);
        bool anyInner = isInner != Vector512<double>.Zero;
        bool anyTail = isInner != Vector512<double>.AllBitsSet;
        var e = anyTail || withDensity ? Exp(-z2) : Vector512<double>.Zero;
        density = e * InvSqrt2Pi;
        var half = Vector512.Create(0.5);
        var inner = anyInner ? Vector512.FusedMultiplyAdd(half * z, Horner(A, z2), half) : Vector512<double>.Zero;
        if (!anyTail) return inner;
        var t = one / Vector512.Max(a, one);
        var isFar = Vector512.GreaterThan(a, Vector512.Create(6.0));
        var poly = Horner(B, t);
        if (isFar != Vector512<double>.Zero)
            poly = Vector512.ConditionalSelect(isFar, t * InvSqrtPi * Horner(Asymptotic, 0.5 * t * t), poly);
        var tail = 0.5 * e * poly;
        var outer = Vector512.ConditionalSelect(Vector512.GreaterThan(z, Vector512<double>.Zero), one - tail, tail);
        return Vector512.ConditionalSelect(isInner, inner, outer);
    }

    /// <summary>
    /// e^x for x ≤ 0 in double precision: x = k·ln2 + r with |r| ≤ ln2/2 (Cody–Waite split of ln2), e^r by its Taylor
    /// series to r¹² (truncation ≤ 2e−16), scaled by 2^k through the exponent bits. Inputs below −708 give ≈ 0.
    /// </summary>
    internal static Vector512<double> Exp(Vector512<double> x)
    {
        const double Log2E = 1.4426950408889634074, Ln2Hi = 0.693147180369123816490, Ln2Lo = 1.90821492927058770002e-10;
        x = Vector512.Max(x, Vector512.Create(-708.0));
        var k = Vector512.Round(x * Log2E);
        var r = Vector512.FusedMultiplyAdd(k, Vector512.Create(-Ln2Hi), x);
        r = Vector512.FusedMultiplyAdd(k, Vector512.Create(-Ln2Lo), r);
        var p = Horner(ExpTaylor, r);
        var scale = Vector512.ShiftLeft(Vector512.ConvertToInt64(k) + Vector512.Create(1023L), 52).AsDouble();
        return p * scale;
    }

    private static double[] CreateExpTaylor(int terms)
    {
        var c = new double[terms];
        double f = 1;
        for (int n = 0; n < terms; n++)
        {
            c[n] = 1 / f;
            f *= n + 1;
        }
        return c;
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

    private static Vector512<double> Horner(double[] c, Vector512<double> x)
    {
        var r = Vector512.Create(c[^1]);
        for (int i = c.Length - 2; i >= 0; i--) r = Vector512.FusedMultiplyAdd(r, x, Vector512.Create(c[i]));
        return r;
    }
}
