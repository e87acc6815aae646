using Microsoft.ML;
using Microsoft.ML.AutoML;
using Microsoft.ML.SearchSpace;
using Microsoft.ML.SearchSpace.Option;

namespace MLNet.StandIn.Tests.AutoML;

[TestClass]
public sealed class TunerTests
{
    private static SearchSpace GridSpace()
    {
        var ss = new SearchSpace();
        ss.Add("a", new ChoiceOption("x", "y", "z"));
        ss.Add("b", new UniformDoubleOption(0, 1));
        return ss;
    }

    private static (string A, double B) Point(Parameter p) => (p["a"].AsType<string>(), p["b"].AsType<double>());

    [TestMethod]
    public void GridSearchEnumeratesTheGridThenStartsOver()
    {
        var tuner = new GridSearchTuner(GridSpace(), step: 2);
        var proposals = Enumerable.Range(0, 7).Select(i => Point(tuner.Propose(new TrialSettings { TrialId = i }))).ToArray();
        CollectionAssert.AreEqual(new[]
        {
            ("x", 0.0), ("x", 0.5), ("y", 0.0), ("y", 0.5), ("z", 0.0), ("z", 0.5), ("x", 0.0),
        }, proposals);
    }

    [TestMethod]
    public void RandomSearchIsSeededAndStaysInRange()
    {
        var a = new RandomSearchTuner(GridSpace(), 42);
        var b = new RandomSearchTuner(GridSpace(), 42);
        var first = Enumerable.Range(0, 50).Select(i => Point(a.Propose(new TrialSettings { TrialId = i }))).ToArray();
        var second = Enumerable.Range(0, 50).Select(i => Point(b.Propose(new TrialSettings { TrialId = i }))).ToArray();
        CollectionAssert.AreEqual(first, second);
        Assert.IsTrue(first.All(p => p.B is >= 0 and < 1));
        CollectionAssert.AreEquivalent(new[] { "x", "y", "z" }, first.Select(p => p.A).Distinct().ToArray());
    }

    /// <summary>CFO starts at the search space's default and, on a smooth objective, walks to its minimum.</summary>
    [TestMethod]
    public void CostFrugalStartsAtTheDefaultAndConverges()
    {
        var ss = new SearchSpace();
        ss.Add("x", new UniformDoubleOption(-2, 2, defaultValue: 1.5));
        ss.Add("y", new UniformDoubleOption(-2, 2, defaultValue: -1.5));
        var tuner = new CostFrugalTuner(ss, 7);
        double Loss(Parameter p) => Math.Pow(p["x"].AsType<double>() - 0.3, 2) + Math.Pow(p["y"].AsType<double>() + 0.4, 2);

        var first = tuner.Propose(new TrialSettings { TrialId = 0 });
        Assert.AreEqual(1.5, first["x"].AsType<double>(), 1e-12);
        Assert.AreEqual(-1.5, first["y"].AsType<double>(), 1e-12);
        double best = double.MaxValue;
        var settings = new TrialSettings { TrialId = 0, Parameter = first };
        tuner.Update(new TrialResult { TrialSettings = settings, Loss = Loss(first) });
        for (int i = 1; i < 300; i++)
        {
            var s = new TrialSettings { TrialId = i };
            var p = tuner.Propose(s);
            s.Parameter = p;
            double loss = Loss(p);
            best = Math.Min(best, loss);
            tuner.Update(new TrialResult { TrialSettings = s, Loss = loss });
        }
        Assert.IsTrue(best < 1e-4, $"best loss {best}");
    }
}
