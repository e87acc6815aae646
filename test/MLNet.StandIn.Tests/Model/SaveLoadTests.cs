using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Calibrators;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace MLNet.StandIn.Tests.Model;

[TestClass]
public sealed class SaveLoadTests
{
    private sealed class Row
    {
        public string Label { get; set; } = "";

        public float Score { get; set; }

        public bool Positive { get; set; }

        public float A { get; set; }
    }

    private sealed class Output
    {
        public uint Key { get; set; }

        public string Back { get; set; } = "";

        public float[] OneHot { get; set; } = Array.Empty<float>();

        public float Probability { get; set; }

        public float[] Features { get; set; } = Array.Empty<float>();
    }

    private static IDataView Data(MLContext ml) => ml.Data.LoadFromEnumerable(new[]
    {
        new Row { Label = "b", Score = -1, Positive = false, A = 1 },
        new Row { Label = "a", Score = 2, Positive = true, A = 2 },
        new Row { Label = "c", Score = 0.5f, Positive = true, A = 3 },
        new Row { Label = "a", Score = -0.2f, Positive = false, A = 4 },
    });

    private static ITransformer Fit(MLContext ml, IDataView data)
        => ml.Transforms.Conversion.MapValueToKey("Key", "Label", keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Append(ml.Transforms.Conversion.MapKeyToValue("Back", "Key"))
            .Append(ml.Transforms.Conversion.MapKeyToVector("OneHot", "Key"))
            .Append(ml.Transforms.CopyColumns("Label2", "Label"))
            .Append(ml.Transforms.Concatenate("Features", "A", "Score"))
            .Append(ml.BinaryClassification.Calibrators.Platt("Positive"), TransformerScope.Everything)
            .Fit(data);

    [TestMethod]
    public void RoundTripReproducesTransformerOutputAndInputSchema()
    {
        var ml = new MLContext(1);
        var data = Data(ml);
        var model = Fit(ml, data);
        using var stream = new MemoryStream();
        ml.Model.Save(model, data.Schema, stream);
        stream.Position = 0;
        var loaded = new MLContext(2).Model.Load(stream, out var inputSchema);

        Assert.IsInstanceOfType<TransformerChain<ITransformer>>(loaded);
        Assert.AreEqual(6, ((TransformerChain<ITransformer>)loaded).Count());
        Assert.IsNotNull(inputSchema);
        CollectionAssert.AreEqual(data.Schema.Select(c => c.Name + ":" + c.Type).ToArray(), inputSchema!.Select(c => c.Name + ":" + c.Type).ToArray());

        var expected = ml.Data.CreateEnumerable<Output>(model.Transform(data), false).ToList();
        var actual = ml.Data.CreateEnumerable<Output>(loaded.Transform(data), false).ToList();
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.AreEqual(expected[i].Key, actual[i].Key);
            Assert.AreEqual(expected[i].Back, actual[i].Back);
            CollectionAssert.AreEqual(expected[i].OneHot, actual[i].OneHot);
            Assert.AreEqual(expected[i].Probability, actual[i].Probability, 0f);
            CollectionAssert.AreEqual(expected[i].Features, actual[i].Features);
        }
        CollectionAssert.AreEqual(new uint[] { 2, 1, 3, 1 }, actual.Select(o => o.Key).ToArray());
        var outputSchema = loaded.GetOutputSchema(data.Schema);
        VBuffer<ReadOnlyMemory<char>> keyValues = default;
        outputSchema["Key"].Annotations.GetValue("KeyValues", ref keyValues);
        CollectionAssert.AreEqual(new[] { "a", "b", "c" }, keyValues.DenseValues().Select(v => v.ToString()).ToArray());
    }

    [TestMethod]
    public void SavesToAFileAndLoadsCalibratorModels()
    {
        var ml = new MLContext(1);
        var data = Data(ml);
        var calibrator = ml.BinaryClassification.Calibrators.Isotonic("Positive").Fit(data);
        string path = Path.Combine(Path.GetTempPath(), "standin-tests", Guid.NewGuid().ToString("N") + ".zip");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        ml.Model.Save(calibrator, null, path);
        var loaded = ml.Model.Load(path, out var schema);
        Assert.IsNull(schema);
        var isotonic = (IsotonicCalibratorTransformer)loaded;
        CollectionAssert.AreEqual(calibrator.Model.Values.ToArray(), isotonic.Model.Values.ToArray());
        Assert.AreEqual(calibrator.Model.PredictProbability(0.7f), isotonic.Model.PredictProbability(0.7f));
    }

    [TestMethod]
    public void NullModelRoundTripsAsAnEmptyChain()
    {
        var ml = new MLContext(1);
        using var stream = new MemoryStream();
        ml.Model.Save(null, null, stream);
        stream.Position = 0;
        var loaded = ml.Model.Load(stream, out _);
        Assert.AreEqual(0, ((TransformerChain<ITransformer>)loaded).Count());
    }

    [TestMethod]
    public void RejectsPathTraversalEntries()
    {
        var ml = new MLContext(1);
        var data = Data(ml);
        using var stream = new MemoryStream();
        ml.Model.Save(Fit(ml, data), data.Schema, stream);
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Update, leaveOpen: true))
        {
            var evil = zip.CreateEntry("Model/../../evil.txt");
            using var writer = new StreamWriter(evil.Open());
            writer.Write("x");
        }
        stream.Position = 0;
        var error = Assert.ThrowsExactly<InvalidDataException>(() => ml.Model.Load(stream, out _));
        StringAssert.Contains(error.Message, "Model/../../evil.txt");
    }

    [TestMethod]
    public void RejectsUnknownLoadersAndForeignArchives()
    {
        var ml = new MLContext(1);
        using var stream = new MemoryStream();
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
        {
            using (var version = new StreamWriter(zip.CreateEntry("Version.txt").Open()))
                version.Write("Microsoft.ML.StandIn model v1");
            using var component = new BinaryWriter(zip.CreateEntry("Model/Component.bin").Open());
            component.Write("SomeThirdPartyLoader");
            component.Write(0);
            component.Write(0);
        }
        stream.Position = 0;
        var unknown = Assert.ThrowsExactly<FormatException>(() => ml.Model.Load(stream, out _));
        StringAssert.Contains(unknown.Message, "SomeThirdPartyLoader");

        using var notAModel = new MemoryStream(new byte[] { 1, 2, 3 });
        Assert.ThrowsExactly<InvalidDataException>(() => ml.Model.Load(notAModel, out _));
    }
}
