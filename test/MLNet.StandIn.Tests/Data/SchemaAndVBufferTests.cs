using System.Collections.Immutable;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.StandIn.Tests.Data;

[TestClass]
public sealed class SchemaAndVBufferTests
{
    [TestMethod]
    public void SchemaResolvesNamesToTheLastColumnAndHidesEarlierOnes()
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumn("A", NumberDataViewType.Single);
        builder.AddColumn("B", TextDataViewType.Instance);
        builder.AddColumn("A", new VectorDataViewType(NumberDataViewType.Double, 3));
        var schema = builder.ToSchema();
        Assert.AreEqual(3, schema.Count);
        Assert.IsTrue(schema[0].IsHidden);
        Assert.AreEqual(2, schema["A"].Index);
        Assert.AreEqual("A: Vector<Double, 3>", schema["A"].ToString());
        Assert.AreEqual("3 columns", schema.ToString());
        Assert.IsNull(schema.GetColumnOrNull("C"));
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => schema["C"]);
        StringAssert.Contains(error.Message, "Column 'C' not found");
        Assert.ThrowsExactly<ArgumentNullException>(() => schema[""]);
    }

    [TestMethod]
    public void TypesCompareAndPrintAsInMLNet()
    {
        Assert.AreEqual(new KeyDataViewType(typeof(uint), 4), new KeyDataViewType(typeof(uint), 4));
        Assert.AreNotEqual(new KeyDataViewType(typeof(uint), 4), new KeyDataViewType(typeof(ulong), 4));
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 2, 3), new VectorDataViewType(NumberDataViewType.Single, ImmutableArray.Create(2, 3)));
        Assert.AreEqual(6, new VectorDataViewType(NumberDataViewType.Single, 2, 3).Size);
        Assert.AreEqual("Vector<Single>", new VectorDataViewType(NumberDataViewType.Single).ToString());
        Assert.AreEqual("Single", NumberDataViewType.Single.ToString());
        Assert.AreEqual(typeof(VBuffer<float>), new VectorDataViewType(NumberDataViewType.Single).RawType);
        Assert.ThrowsExactly<ArgumentException>(() => new KeyDataViewType(typeof(int), 3));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new KeyDataViewType(typeof(byte), 300));
    }

    [TestMethod]
    public void AnnotationsAreTypedOneRowTables()
    {
        var builder = new DataViewSchema.Annotations.Builder();
        builder.AddPrimitiveValue("IsNormalized", BooleanDataViewType.Instance, true);
        builder.Add("Names", new VectorDataViewType(TextDataViewType.Instance, 2),
            (ref VBuffer<ReadOnlyMemory<char>> dst) => dst = new VBuffer<ReadOnlyMemory<char>>(2, new[] { "a".AsMemory(), "b".AsMemory() }));
        var annotations = builder.ToAnnotations();
        Assert.AreEqual("IsNormalized, Names", annotations.ToString());
        bool normalized = false;
        annotations.GetValue("IsNormalized", ref normalized);
        Assert.IsTrue(normalized);
        Assert.ThrowsExactly<InvalidOperationException>(() => annotations.GetValue("Missing", ref normalized));
        Assert.ThrowsExactly<ArgumentException>(() => builder.Add("Bad", NumberDataViewType.Single, (ValueGetter<double>)((ref double d) => d = 1)));
        Assert.AreSame(DataViewSchema.Annotations.Empty, new DataViewSchema.Annotations.Builder().ToAnnotations());
    }

    [TestMethod]
    public void VBufferDenseAndSparseAccess()
    {
        var sparse = new VBuffer<float>(6, 2, new[] { 3f, 5f }, new[] { 1, 4 });
        Assert.IsFalse(sparse.IsDense);
        CollectionAssert.AreEqual(new[] { 0f, 3f, 0f, 0f, 5f, 0f }, sparse.DenseValues().ToArray());
        Assert.AreEqual(5f, sparse.GetItemOrDefault(4));
        Assert.AreEqual(0f, sparse.GetItemOrDefault(5));
        CollectionAssert.AreEqual(new[] { new KeyValuePair<int, float>(1, 3), new KeyValuePair<int, float>(4, 5) }, sparse.Items().ToArray());
        Assert.AreEqual("Sparse vector of size 6, 2 explicit values", sparse.ToString());

        var span = new float[8];
        sparse.CopyTo(span, 2, -1);
        CollectionAssert.AreEqual(new[] { 0f, 0f, -1f, 3f, -1f, -1f, 5f, -1f }, span);

        VBuffer<float> slice = default;
        sparse.CopyTo(ref slice, 1, 3);
        CollectionAssert.AreEqual(new[] { 3f, 0f, 0f }, slice.DenseValues().ToArray());

        VBuffer<float> dense = default;
        sparse.CopyToDense(ref dense);
        Assert.IsTrue(dense.IsDense);
        Assert.AreEqual("Dense vector of size 6", dense.ToString());
        Assert.ThrowsExactly<ArgumentException>(() => new VBuffer<float>(3, 2, new[] { 1f, 2f }, new[] { 2, 1 }));
    }

    [TestMethod]
    public void VBufferEditorReusesBuffersThatAreLargeEnough()
    {
        var buffer = new VBuffer<int>(4, new[] { 1, 2, 3, 4 });
        var editor = VBufferEditor.Create(ref buffer, 3);
        Assert.IsFalse(editor.CreatedNewValues);
        editor.Values[0] = 9;
        var committed = editor.Commit();
        CollectionAssert.AreEqual(new[] { 9, 2, 3 }, committed.DenseValues().ToArray());
        var grown = VBufferEditor.Create(ref committed, 10, maxValuesCapacity: 16, keepOldOnResize: true);
        Assert.IsTrue(grown.CreatedNewValues);
        Assert.AreEqual(9, grown.Values[0]);
        var sparseEditor = VBufferEditor.Create(ref buffer, 10, valuesCount: 2);
        sparseEditor.Indices[0] = 3;
        sparseEditor.Indices[1] = 7;
        sparseEditor.Values[0] = 1;
        sparseEditor.Values[1] = 2;
        var sparse = sparseEditor.Commit();
        Assert.AreEqual(2, sparse.GetItemOrDefault(7));
        Assert.AreEqual(1, sparseEditor.CommitTruncated(1).GetValues().Length);
    }

    [TestMethod]
    public void RowIdsOrderAndDerive()
    {
        var a = new DataViewRowId(5, 1);
        var b = new DataViewRowId(2, 2);
        Assert.IsTrue(a.CompareTo(b) < 0);
        Assert.AreNotEqual(a.Fork(), a.Next());
        Assert.AreEqual(a.Combine(b), a.Combine(b));
        Assert.AreNotEqual(a, a.Next());
    }
}
