using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.StandIn.Tests.Model;

[TestClass]
public sealed class PredictionEngineTests
{
    private sealed class Input
    {
        public string Label { get; set; } = "";
    }

    private sealed class Output
    {
        [ColumnName("Key")]
        public uint LabelKey { get; set; }

        public string Back { get; set; } = "";

        public float Unmapped { get; set; } = -1;
    }

    [TestMethod]
    public void PredictsThroughTheRowToRowMapper()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { new Input { Label = "x" }, new Input { Label = "y" } });
        var model = ml.Transforms.Conversion.MapValueToKey("Key", "Label")
            .Append(ml.Transforms.Conversion.MapKeyToValue("Back", "Key"))
            .Fit(data);
        using var engine = ml.Model.CreatePredictionEngine<Input, Output>(model);
        var y = engine.Predict(new Input { Label = "y" });
        Assert.AreEqual(2u, y.LabelKey);
        Assert.AreEqual("y", y.Back);
        Assert.AreEqual(-1f, y.Unmapped, "members without a column are left alone (ignoreMissingColumns)");
        var unseen = engine.Predict(new Input { Label = "zzz" });
        Assert.AreEqual(0u, unseen.LabelKey);
        Assert.AreEqual("", unseen.Back);
        Assert.AreEqual(NumberDataViewType.UInt32.RawType, engine.OutputSchema["Key"].Type.RawType);

        var strict = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.CreatePredictionEngine<Input, Output>(model, ignoreMissingColumns: false));
        StringAssert.Contains(strict.Message, "Unmapped");
    }

    [TestMethod]
    public void RequiresARowToRowMapper()
    {
        var ml = new MLContext(1);
        var error = Assert.ThrowsExactly<ArgumentException>(() => ml.Model.CreatePredictionEngine<Input, Output>(new NotRowToRow()));
        StringAssert.Contains(error.Message, "Must be a row to row mapper");
    }

    private sealed class NotRowToRow : ITransformer
    {
        public bool IsRowToRowMapper => false;

        public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => inputSchema;

        public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => throw new InvalidOperationException("should not be called");

        public void Save(ModelSaveContext ctx)
        {
        }

        public IDataView Transform(IDataView input) => input;
    }
}
