using Microsoft.ML.SearchSpace;
using Microsoft.ML.SearchSpace.Option;

namespace MLNet.StandIn.Tests.AutoML;

public sealed class LoraOptions
{
    [Range(1, 64, init: 8, logBase: true)]
    public int Rank { get; set; }

    [Range(1f, 64f, init: 16f)]
    public float Alpha { get; set; }

    [Range(1e-5, 1e-3, init: 1e-4, logBase: true)]
    public double LearningRate { get; set; }

    [Choice(new object[] { "q", "qv", "all" }, "qv")]
    public string Targets { get; set; } = "";

    [BooleanChoice(false)]
    public bool UseDora { get; set; }

    public int Epochs { get; set; } = 3;
}

[TestClass]
public sealed class SearchSpaceTests
{
    [TestMethod]
    public void NumericOptionsMapLinearlyOrLogarithmically()
    {
        // log scale on [1e-5, 1e-3]: 1e-4 sits at (ln 1e-4 − ln 1e-5)/(ln 1e-3 − ln 1e-5) = 1/2.
        var lr = new UniformDoubleOption(1e-5, 1e-3, logBase: true);
        Assert.AreEqual(0.5, lr.MappingToFeatureSpace(Parameter.FromDouble(1e-4))[0], 1e-15);
        Assert.AreEqual(1e-4, lr.SampleFromFeatureSpace(new[] { 0.5 }).AsType<double>(), 1e-19);

        // int on [1, 64]: feature ½ → 1 + 63/2 = 32.5 → floor 32; 32 maps back to 31/63.
        var rank = new UniformIntOption(1, 64);
        Assert.AreEqual(32, rank.SampleFromFeatureSpace(new[] { 0.5 }).AsType<int>());
        Assert.AreEqual(31.0 / 63, rank.MappingToFeatureSpace(Parameter.FromInt(32))[0], 1e-15);
        Assert.AreEqual(16, new UniformIntOption(4, 64, logBase: true).SampleFromFeatureSpace(new[] { 0.5 }).AsType<int>()); // 4·16^½

        Assert.AreEqual(ParameterType.Number, new UniformSingleOption(0f, 1f).SampleFromFeatureSpace(new[] { 0.25 }).ParameterType);
        Assert.AreEqual(0.25f, new UniformSingleOption(0f, 1f).SampleFromFeatureSpace(new[] { 0.25 }).AsType<float>());

        Assert.ThrowsExactly<ArgumentException>(() => new UniformDoubleOption(1, 1));
        Assert.ThrowsExactly<ArgumentException>(() => new UniformDoubleOption(0, 1, logBase: true));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => rank.MappingToFeatureSpace(Parameter.FromInt(65)));
    }

    [TestMethod]
    public void ChoiceOptionSplitsTheUnitIntervalEvenly()
    {
        var choice = new ChoiceOption("a", "b", "c");
        Assert.AreEqual(1, choice.FeatureSpaceDim);
        CollectionAssert.AreEqual(new int?[] { 3 }, choice.Step);
        Assert.AreEqual(1.0 / 3, choice.MappingToFeatureSpace(Parameter.FromString("b"))[0], 1e-15);
        Assert.AreEqual("a", choice.SampleFromFeatureSpace(new[] { 0.33 }).AsType<string>());
        Assert.AreEqual("b", choice.SampleFromFeatureSpace(new[] { 0.34 }).AsType<string>());
        Assert.AreEqual("c", choice.SampleFromFeatureSpace(new[] { 1.0 }).AsType<string>());
        var single = new ChoiceOption("only");
        Assert.AreEqual(0, single.FeatureSpaceDim);
        Assert.AreEqual("only", single.SampleFromFeatureSpace(Array.Empty<double>()).AsType<string>());
        Assert.ThrowsExactly<ArgumentException>(() => new ChoiceOption("x", "x"));
    }

    [TestMethod]
    public void TypedSearchSpaceComesFromAttributesInKeyOrder()
    {
        var ss = new SearchSpace<LoraOptions>();
        CollectionAssert.AreEquivalent(new[] { "Alpha", "LearningRate", "Rank", "Targets", "UseDora" }, ss.Keys.ToArray());
        Assert.AreEqual(5, ss.FeatureSpaceDim);
        CollectionAssert.AreEqual(new int?[] { null, null, null, 3, 2 }, ss.Step);
        // Defaults in ordinal key order: Alpha (16−1)/63, LearningRate ½, Rank ln 8 / ln 64 = ½, Targets "qv" = 1/3, UseDora false = 1/2.
        var expected = new[] { 15.0 / 63, 0.5, 0.5, 1.0 / 3, 0.5 };
        var actual = ss.Default;
        for (int i = 0; i < expected.Length; i++)
            Assert.AreEqual(expected[i], actual[i], 1e-15, $"dimension {i}");

        var options = ss.SampleFromFeatureSpace(ss.Default);
        Assert.AreEqual(8, options.Rank);
        Assert.AreEqual(16f, options.Alpha);
        Assert.AreEqual(1e-4, options.LearningRate, 1e-18);
        Assert.AreEqual("qv", options.Targets);
        Assert.IsFalse(options.UseDora);
        Assert.AreEqual(3, options.Epochs, "unsearched members keep their initializers");

        var corner = ss.SampleFromFeatureSpace(new[] { 0.0, 0.99, 0.0, 0.99, 0.0 });
        Assert.AreEqual(1f, corner.Alpha);
        Assert.AreEqual(1, corner.Rank);
        Assert.AreEqual("all", corner.Targets);
        Assert.IsTrue(corner.UseDora);
        Assert.AreEqual(1e-5 * Math.Pow(100, 0.99), corner.LearningRate, 1e-18);

        var roundTrip = ss.MappingToFeatureSpace(options);
        for (int i = 0; i < expected.Length; i++)
            Assert.AreEqual(expected[i], roundTrip[i], 1e-12);
    }

    [TestMethod]
    public void DefaultOptionSuppliesUnsearchedMembers()
    {
        var ss = new SearchSpace<LoraOptions>(new LoraOptions { Epochs = 5, Rank = 8, Alpha = 16, LearningRate = 1e-4, Targets = "qv" });
        Assert.AreEqual(5, ss.SampleFromFeatureSpace(ss.Default).Epochs);
    }

    [TestMethod]
    public void ParametersConvertAndCompareThroughJson()
    {
        var nested = Parameter.CreateNestedParameter(
            new KeyValuePair<string, Parameter>("rank", Parameter.FromInt(8)),
            new KeyValuePair<string, Parameter>("lr", Parameter.FromDouble(0.001)),
            new KeyValuePair<string, Parameter>("mode", Parameter.FromEnum(DayOfWeek.Monday)),
            new KeyValuePair<string, Parameter>("layers", Parameter.FromIEnumerable(new[] { 1, 2 })));
        Assert.AreEqual(ParameterType.Object, nested.ParameterType);
        Assert.AreEqual(4, nested.Count);
        Assert.AreEqual(8, nested["rank"].AsType<int>());
        Assert.AreEqual(8.0, nested["rank"].AsType<double>());
        Assert.AreEqual(DayOfWeek.Monday, nested["mode"].AsType<DayOfWeek>());
        CollectionAssert.AreEqual(new[] { 1, 2 }, nested["layers"].AsType<int[]>());
        Assert.AreEqual(Parameter.FromInt(8), nested["rank"]);
        Assert.AreNotEqual(Parameter.FromInt(8), Parameter.FromInt(9));
        StringAssert.Contains(nested.ToString(), "\"rank\": 8");
        Assert.ThrowsExactly<InvalidOperationException>(() => Parameter.FromInt(1)["x"]);

        var fromObject = Parameter.FromObject(new LoraOptions { Rank = 4, Targets = "q" });
        Assert.AreEqual(4, fromObject["Rank"].AsType<int>());
        Assert.AreEqual(4, fromObject.AsType<LoraOptions>().Rank);
        Assert.AreEqual("q", fromObject.AsType<LoraOptions>().Targets);
    }
}
