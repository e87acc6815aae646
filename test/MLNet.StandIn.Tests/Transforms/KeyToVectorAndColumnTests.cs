using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.StandIn.Tests.Transforms;

[TestClass]
public sealed class KeyToVectorAndColumnTests
{
    private sealed class Row
    {
        public string Label { get; set; } = "";

        public float A { get; set; }

        [VectorType(2)]
        public float[] B { get; set; } = Array.Empty<float>();
    }

    [TestMethod]
    public void MapKeyToVectorProducesOneHotWithSlotNames()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { "x", "y", "x", "z" }.Select(l => new Row { Label = l, B = new[] { 0f, 0f } }).ToList());
        var output = ml.Transforms.Conversion.MapValueToKey("Key", "Label")
            .Append(ml.Transforms.Conversion.MapKeyToVector("OneHot", "Key"))
            .Fit(data).Transform(data);
        var type = (VectorDataViewType)output.Schema["OneHot"].Type;
        Assert.AreEqual(3, type.Size);
        Assert.AreEqual(NumberDataViewType.Single, type.ItemType);
        var vectors = output.GetColumn<VBuffer<float>>("OneHot").Select(v => v.DenseValues().ToArray()).ToArray();
        CollectionAssert.AreEqual(new float[] { 1, 0, 0 }, vectors[0]);
        CollectionAssert.AreEqual(new float[] { 0, 1, 0 }, vectors[1]);
        CollectionAssert.AreEqual(new float[] { 0, 0, 1 }, vectors[3]);
        VBuffer<ReadOnlyMemory<char>> slotNames = default;
        output.Schema["OneHot"].Annotations.GetValue("SlotNames", ref slotNames);
        CollectionAssert.AreEqual(new[] { "x", "y", "z" }, slotNames.DenseValues().Select(s => s.ToString()).ToArray());
    }

    [TestMethod]
    public void ConcatenateJoinsScalarsAndVectorsInOrder()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { new Row { A = 1, B = new[] { 2f, 3f } }, new Row { A = 4, B = new[] { 5f, 6f } } });
        var output = ml.Transforms.Concatenate("Features", "B", "A").Fit(data).Transform(data);
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 3), output.Schema["Features"].Type);
        var rows = output.GetColumn<VBuffer<float>>("Features").Select(v => v.DenseValues().ToArray()).ToArray();
        CollectionAssert.AreEqual(new float[] { 2, 3, 1 }, rows[0]);
        CollectionAssert.AreEqual(new float[] { 5, 6, 4 }, rows[1]);
        var mismatch = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Concatenate("F", "A", "Label").Fit(data));
        StringAssert.Contains(mismatch.Message, "Schema mismatch for input column 'Label'");
    }

    [TestMethod]
    public void CopyColumnsKeepsTypeAndAnnotations()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { new Row { Label = "p" }, new Row { Label = "q" } });
        var output = ml.Transforms.Conversion.MapValueToKey("Key", "Label")
            .Append(ml.Transforms.CopyColumns("KeyCopy", "Key"))
            .Fit(data).Transform(data);
        Assert.AreEqual(output.Schema["Key"].Type, output.Schema["KeyCopy"].Type);
        Assert.AreEqual("KeyValues", output.Schema["KeyCopy"].Annotations.ToString());
        CollectionAssert.AreEqual(new uint[] { 1, 2 }, output.GetColumn<uint>("KeyCopy"));
    }
}
