using Microsoft.ML;
using Microsoft.ML.Calibrators;
using Microsoft.ML.Data;

namespace MLNet.StandIn.Tests.Calibrators;

[TestClass]
public sealed class CalibratorTests
{
    private sealed class Scored
    {
        public float Score { get; set; }

        public bool Label { get; set; }
    }

    private static readonly bool[] Labels =
    {
        false, false, false, true, false, false, true, false, false, true,
        false, true, true, false, true, true, true, false, true, true,
    };

    private static List<Scored> Rows() => Labels.Select((l, i) => new Scored { Score = i / 5f - 2f, Label = l }).ToList();

    /// <summary>
    /// Independent reference: Newton's method in double on Platt's smoothed-target cross-entropy
    /// E(A, B) = −Σ t log p + (1 − t) log(1 − p), p = 1/(1 + exp(A s + B)), t₊ = (N₊+1)/(N₊+2), t₋ = 1/(N₋+2),
    /// iterated until the gradient vanishes to 1e-13.
    /// </summary>
    private static (double A, double B, double E) ReferencePlatt(List<Scored> rows)
    {
        double nPos = rows.Count(r => r.Label), nNeg = rows.Count - nPos;
        double hi = (nPos + 1) / (nPos + 2), lo = 1 / (nNeg + 2);
        double a = 0, b = Math.Log((nNeg + 1) / (nPos + 1));
        for (int it = 0; it < 100; it++)
        {
            double ga = 0, gb = 0, haa = 0, hab = 0, hbb = 0;
            foreach (var r in rows)
            {
                double s = r.Score, t = r.Label ? hi : lo, p = 1 / (1 + Math.Exp(a * s + b));
                ga += s * (t - p);
                gb += t - p;
                double w = p * (1 - p);
                haa += s * s * w;
                hab += s * w;
                hbb += w;
            }
            if (Math.Abs(ga) < 1e-13 && Math.Abs(gb) < 1e-13)
                break;
            double det = haa * hbb - hab * hab;
            a -= (hbb * ga - hab * gb) / det;
            b -= (haa * gb - hab * ga) / det;
        }
        return (a, b, Objective(rows, a, b, hi, lo));
    }

    private static double Objective(List<Scored> rows, double a, double b, double hi, double lo)
        => -rows.Sum(r =>
        {
            double t = r.Label ? hi : lo, p = 1 / (1 + Math.Exp(a * r.Score + b));
            return t * Math.Log(p) + (1 - t) * Math.Log(1 - p);
        });

    [TestMethod]
    public void PlattMatchesTheCrossEntropyMinimizer()
    {
        var ml = new MLContext(1);
        var rows = Rows();
        var data = ml.Data.LoadFromEnumerable(rows);
        var transformer = ml.BinaryClassification.Calibrators.Platt().Fit(data);
        var reference = ReferencePlatt(rows);
        double nPos = rows.Count(r => r.Label), nNeg = rows.Count - nPos;
        double fitted = Objective(rows, transformer.Model.Slope, transformer.Model.Offset, (nPos + 1) / (nPos + 2), 1 / (nNeg + 2));

        Assert.IsTrue(reference.A < 0, "a score that grows with the positive class has a negative slope");
        // ML.NET's loop keeps probabilities in single precision, so the fit agrees with the double-precision minimizer to
        // about float resolution (observed 3e-8); 1e-6 leaves margin but would catch any wrong target, sign or step.
        Assert.AreEqual(reference.A, transformer.Model.Slope, 1e-6);
        Assert.AreEqual(reference.B, transformer.Model.Offset, 1e-6);
        Assert.AreEqual(reference.E, fitted, 1e-7 * reference.E);

        var probability = model(transformer, ml, data);
        float expected = (float)(1 / (1 + Math.Exp(transformer.Model.Slope * 1.0f + transformer.Model.Offset)));
        Assert.AreEqual(expected, probability[15], 0f); // row 15 has score 1.0
        Assert.AreEqual(expected, transformer.Model.PredictProbability(1.0f), 0f);
        Assert.IsTrue(float.IsNaN(transformer.Model.PredictProbability(float.NaN)));

        static float[] model(ITransformer t, MLContext ml, IDataView data) => t.Transform(data).GetColumn<float>("Probability");
    }

    [TestMethod]
    public void FixedPlattUsesTheGivenParameters()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Rows());
        var transformer = ml.BinaryClassification.Calibrators.Platt(slope: -2, offset: 0.5).Fit(data);
        // p(score 0.4) = 1 / (1 + exp(−2·0.4 + 0.5)) = 1 / (1 + e^−0.3) = 0.574442516811659
        Assert.AreEqual(0.574442516811659, transformer.Model.PredictProbability(0.4f), 1e-7);
    }

    /// <summary>
    /// PAV by hand: scores 1..5 with targets 0 1 0 1 1 → pieces [1,1]→0, [2,3]→½ (1 and 0 pooled), [4,5]→1.
    /// Between pieces the value is interpolated: 3.5 → ½ + ½·(1 − ½) = ¾; outputs are clamped to [1e-15, 1 − 1e-15].
    /// </summary>
    [TestMethod]
    public void IsotonicPoolsAdjacentViolators()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { 3f, 1f, 5f, 2f, 4f }.Select(s => new Scored { Score = s, Label = s is 2f or 4f or 5f }).ToList());
        var calibrator = ml.BinaryClassification.Calibrators.Isotonic().Fit(data).Model;
        CollectionAssert.AreEqual(new[] { 1f, 2f, 4f }, calibrator.Mins.ToArray());
        CollectionAssert.AreEqual(new[] { 1f, 3f, 5f }, calibrator.Maxes.ToArray());
        CollectionAssert.AreEqual(new[] { 0f, 0.5f, 1f }, calibrator.Values.ToArray());
        Assert.AreEqual((float)1e-15, calibrator.PredictProbability(0f));
        Assert.AreEqual(0.5f, calibrator.PredictProbability(2.5f));
        Assert.AreEqual(0.75f, calibrator.PredictProbability(3.5f));
        Assert.AreEqual(1f, calibrator.PredictProbability(10f)); // 1 − 1e-15 rounds to 1 in single precision
    }

    [TestMethod]
    public void CalibratorAddsProbabilityAndNeedsABooleanLabel()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Rows());
        var output = ml.BinaryClassification.Calibrators.Platt().Fit(data).Transform(data);
        Assert.AreEqual(NumberDataViewType.Single, output.Schema["Probability"].Type);
        bool normalized = false;
        output.Schema["Probability"].Annotations.GetValue("IsNormalized", ref normalized);
        Assert.IsTrue(normalized);

        var floatLabels = ml.Data.LoadFromEnumerable(new[] { new FloatLabel { Score = 1, Label = 1 } });
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.BinaryClassification.Calibrators.Platt().Fit(floatLabels));
        StringAssert.Contains(error.Message, "Schema mismatch for label column 'Label': expected Boolean");
    }

    private sealed class FloatLabel
    {
        public float Score { get; set; }

        public float Label { get; set; }
    }
}
