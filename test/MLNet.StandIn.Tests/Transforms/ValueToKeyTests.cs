using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace MLNet.StandIn.Tests.Transforms;

[TestClass]
public sealed class ValueToKeyTests
{
    private sealed class Row
    {
        public string Label { get; set; } = "";

        public float Value { get; set; }
    }

    private sealed class KeyOut
    {
        public uint LabelKey { get; set; }

        public string Label { get; set; } = "";
    }

    private static IDataView Data(MLContext ml, params string[] labels)
        => ml.Data.LoadFromEnumerable(labels.Select((l, i) => new Row { Label = l, Value = i }).ToList());

    [TestMethod]
    public void KeysFollowFirstOccurrenceAndCarryKeyValues()
    {
        var ml = new MLContext(1);
        var data = Data(ml, "cat", "dog", "cat", "", "bird");
        var model = ml.Transforms.Conversion.MapValueToKey("LabelKey", "Label").Fit(data);
        var output = model.Transform(data);

        var column = output.Schema["LabelKey"];
        Assert.AreEqual(new KeyDataViewType(typeof(uint), 3), column.Type);
        Assert.AreEqual("Key<UInt32, 0-2>", column.Type.ToString());
        VBuffer<ReadOnlyMemory<char>> keyValues = default;
        column.Annotations.GetValue("KeyValues", ref keyValues);
        CollectionAssert.AreEqual(new[] { "cat", "dog", "bird" }, keyValues.DenseValues().Select(v => v.ToString()).ToArray());

        // The empty string is text's missing value: it gets key 0 and no dictionary entry.
        var keys = ml.Data.CreateEnumerable<KeyOut>(output, reuseRowObject: false).Select(r => r.LabelKey).ToArray();
        CollectionAssert.AreEqual(new uint[] { 1, 2, 1, 0, 3 }, keys);
    }

    [TestMethod]
    public void ByValueOrdersKeysOrdinally()
    {
        var ml = new MLContext(1);
        var data = Data(ml, "b", "C", "a", "b");
        var output = ml.Transforms.Conversion.MapValueToKey("LabelKey", "Label", keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Fit(data).Transform(data);
        VBuffer<ReadOnlyMemory<char>> keyValues = default;
        output.Schema["LabelKey"].Annotations.GetValue("KeyValues", ref keyValues);
        CollectionAssert.AreEqual(new[] { "C", "a", "b" }, keyValues.DenseValues().Select(v => v.ToString()).ToArray());
        CollectionAssert.AreEqual(new uint[] { 3, 1, 2, 3 }, ml.Data.CreateEnumerable<KeyOut>(output, false).Select(r => r.LabelKey).ToArray());
    }

    [TestMethod]
    public void MaximumNumberOfKeysCapsTheDictionaryAndUnseenValuesMapToZero()
    {
        var ml = new MLContext(1);
        var train = Data(ml, "x", "y", "z", "x");
        var model = ml.Transforms.Conversion.MapValueToKey("LabelKey", "Label", maximumNumberOfKeys: 2).Fit(train);
        var test = Data(ml, "z", "y", "w", "x");
        var keys = ml.Data.CreateEnumerable<KeyOut>(model.Transform(test), false).Select(r => r.LabelKey).ToArray();
        CollectionAssert.AreEqual(new uint[] { 0, 2, 0, 1 }, keys);
        Assert.AreEqual(2UL, ((KeyDataViewType)model.GetOutputSchema(test.Schema)["LabelKey"].Type).Count);
    }

    [TestMethod]
    public void NumericValuesGetKeysAndNaNIsMissing()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { 2.5f, float.NaN, -1f, 2.5f }.Select(v => new Row { Value = v }).ToList());
        var output = ml.Transforms.Conversion.MapValueToKey("ValueKey", "Value").Fit(data).Transform(data);
        VBuffer<float> keyValues = default;
        output.Schema["ValueKey"].Annotations.GetValue("KeyValues", ref keyValues);
        CollectionAssert.AreEqual(new[] { 2.5f, -1f }, keyValues.DenseValues().ToArray());
        var text = ml.Transforms.Conversion.MapValueToKey("ValueKey", "Value", addKeyValueAnnotationsAsText: true).Fit(data).Transform(data);
        VBuffer<ReadOnlyMemory<char>> names = default;
        text.Schema["ValueKey"].Annotations.GetValue("KeyValues", ref names);
        CollectionAssert.AreEqual(new[] { "2.5", "-1" }, names.DenseValues().Select(v => v.ToString()).ToArray());
    }

    [TestMethod]
    public void MapKeyToValueRoundTripsAndMapsKeyZeroToMissing()
    {
        var ml = new MLContext(1);
        var data = Data(ml, "cat", "dog", "", "bird", "dog");
        var pipeline = ml.Transforms.Conversion.MapValueToKey("LabelKey", "Label")
            .Append(ml.Transforms.Conversion.MapKeyToValue("Back", "LabelKey"));
        var output = pipeline.Fit(data).Transform(data);
        Assert.AreEqual(TextDataViewType.Instance, output.Schema["Back"].Type);
        var back = output.GetColumn<string>("Back");
        CollectionAssert.AreEqual(new[] { "cat", "dog", "", "bird", "dog" }, back);
    }

    [TestMethod]
    public void InPlaceMappingHidesTheInputColumn()
    {
        var ml = new MLContext(1);
        var data = Data(ml, "a", "b");
        var output = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
        Assert.AreEqual(3, output.Schema.Count);
        Assert.IsTrue(output.Schema[0].IsHidden);
        Assert.IsInstanceOfType<KeyDataViewType>(output.Schema["Label"].Type);
        Assert.AreEqual(2, output.Schema["Label"].Index);
    }

    [TestMethod]
    public void SchemaShapePropagationMatchesMLNet()
    {
        var ml = new MLContext(1);
        var data = Data(ml, "a", "b");
        var estimator = ml.Transforms.Conversion.MapValueToKey("LabelKey", "Label");
        var shape = estimator.Fit(data).Transform(data).Schema;
        var keyShape = ml.Transforms.CopyColumns("Copy", "LabelKey").GetOutputSchema(ShapeOf(ml, data, estimator));
        var copy = keyShape.Single(c => c.Name == "Copy");
        Assert.IsTrue(copy.IsKey);
        Assert.AreEqual(NumberDataViewType.UInt32, copy.ItemType);
        Assert.AreEqual(SchemaShape.Column.VectorKind.Scalar, copy.Kind);
        var keyValues = copy.Annotations.Single(a => a.Name == "KeyValues");
        Assert.AreEqual(TextDataViewType.Instance, keyValues.ItemType);
        Assert.AreEqual(SchemaShape.Column.VectorKind.Vector, keyValues.Kind);
        Assert.IsNotNull(shape.GetColumnOrNull("LabelKey"));

        // MapKeyToValue needs a key with KeyValues; the raw text column has neither.
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.Transforms.Conversion.MapKeyToValue("Back", "Label").GetOutputSchema(estimator.GetOutputSchema(ShapeOfData(ml, data))));
        StringAssert.Contains(error.Message, "Schema mismatch for input column 'Label': expected key type");
    }

    [TestMethod]
    public void MissingInputColumnIsNamed()
    {
        var ml = new MLContext(1);
        var data = Data(ml, "a");
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Conversion.MapValueToKey("K", "Nope").Fit(data));
        StringAssert.Contains(error.Message, "Could not find input column 'Nope'");
    }

    internal static SchemaShape ShapeOfData(MLContext ml, IDataView data)
        => ml.Transforms.CopyColumns("__shape_probe", data.Schema[0].Name).GetOutputSchema(EmptyShape(data));

    private static SchemaShape ShapeOf(MLContext ml, IDataView data, IEstimator<ITransformer> estimator)
        => estimator.GetOutputSchema(ShapeOfData(ml, data));

    private static SchemaShape EmptyShape(IDataView data)
    {
        // Public code cannot call SchemaShape.Create; a fitted estimator's transform gives a schema, and the test project
        // (which sees internals) takes its shape directly.
        return SchemaShape.Create(data.Schema);
    }
}
