using Microsoft.ML;
using Microsoft.ML.Transforms;

namespace MLNet.StandIn.Tests.Model;

public sealed class LengthInput
{
    public string Text { get; set; } = "";
}

public sealed class LengthOutput
{
    public float Length { get; set; }

    public string Upper { get; set; } = "";
}

/// <summary>The factory the model loader finds by contract name.</summary>
[CustomMappingFactoryAttribute("TextLength")]
public sealed class TextLengthFactory : CustomMappingFactory<LengthInput, LengthOutput>
{
    public static void Map(LengthInput input, LengthOutput output)
    {
        output.Length = input.Text.Length;
        output.Upper = input.Text.ToUpperInvariant();
    }

    public override Action<LengthInput, LengthOutput> GetMapping() => Map;
}

[TestClass]
public sealed class CustomMappingTests
{
    private static IDataView Data(MLContext ml) => ml.Data.LoadFromEnumerable(new[] { new LengthInput { Text = "ab" }, new LengthInput { Text = "hello" } });

    [TestMethod]
    public void MapsRowsAndRoundTripsThroughTheFactory()
    {
        var ml = new MLContext(1);
        var data = Data(ml);
        var model = ml.Transforms.CustomMapping<LengthInput, LengthOutput>(TextLengthFactory.Map, "TextLength").Fit(data);
        var rows = ml.Data.CreateEnumerable<LengthOutput>(model.Transform(data), false).ToList();
        CollectionAssert.AreEqual(new[] { 2f, 5f }, rows.Select(r => r.Length).ToArray());
        CollectionAssert.AreEqual(new[] { "AB", "HELLO" }, rows.Select(r => r.Upper).ToArray());

        using var stream = new MemoryStream();
        ml.Model.Save(model, data.Schema, stream);
        stream.Position = 0;
        var loaded = new MLContext(2).Model.Load(stream, out _);
        var reloaded = ml.Data.CreateEnumerable<LengthOutput>(loaded.Transform(data), false).ToList();
        CollectionAssert.AreEqual(new[] { "AB", "HELLO" }, reloaded.Select(r => r.Upper).ToArray());

        using var engine = ml.Model.CreatePredictionEngine<LengthInput, LengthOutput>(loaded);
        Assert.AreEqual(3f, engine.Predict(new LengthInput { Text = "xyz" }).Length);
    }

    [TestMethod]
    public void WithoutAContractNameTheModelCannotBeSaved()
    {
        var ml = new MLContext(1);
        var data = Data(ml);
        var model = ml.Transforms.CustomMapping<LengthInput, LengthOutput>(TextLengthFactory.Map, null).Fit(data);
        using var stream = new MemoryStream();
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.Save(model, data.Schema, stream));
        StringAssert.Contains(error.Message, "contract name");
    }

    [TestMethod]
    public void UnknownContractsFailToLoadWithMLNetMessage()
    {
        var ml = new MLContext(1);
        var data = Data(ml);
        var model = ml.Transforms.CustomMapping<LengthInput, LengthOutput>(TextLengthFactory.Map, "NoSuchContract").Fit(data);
        using var stream = new MemoryStream();
        ml.Model.Save(model, data.Schema, stream);
        stream.Position = 0;
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.Load(stream, out _));
        StringAssert.StartsWith(error.Message, "Unable to locate an extension for the contract 'NoSuchContract'. Ensure you have called ComponentCatalog.RegisterAssembly");
    }

    [TestMethod]
    public void RegisteringAnAssemblyFindsItsFactories()
    {
        var ml = new MLContext(1);
        ml.ComponentCatalog.RegisterAssembly(typeof(TextLengthFactory).Assembly);
        ml.ComponentCatalog.RegisterAssembly(typeof(TextLengthFactory).Assembly); // registering twice is harmless
        Assert.AreEqual(typeof(TextLengthFactory), ml.ComponentCatalog.FindExtension<CustomMappingFactoryAttributeAttribute>("TextLength"));
    }
}
