using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.StandIn.Tests.Data;

[TestClass]
public sealed class DataOperationsTests
{
    private sealed class Row
    {
        public int Id { get; set; }

        public string Group { get; set; } = "";

        [VectorType(2)]
        public float[] Values { get; set; } = new float[2];
    }

    private sealed class IdOnly
    {
        public int Id { get; set; }
    }

    private static List<Row> Rows(int n) => Enumerable.Range(0, n)
        .Select(i => new Row { Id = i, Group = "g" + (i % 7), Values = new float[] { i, -i } })
        .ToList();

    private static int[] Ids(MLContext ml, IDataView data) => ml.Data.CreateEnumerable<IdOnly>(data, reuseRowObject: true).Select(r => r.Id).ToArray();

    [TestMethod]
    public void LoadFromEnumerableIsLazyAndReEnumerated()
    {
        var ml = new MLContext(1);
        var list = Rows(3);
        var data = ml.Data.LoadFromEnumerable(list);
        list.Add(new Row { Id = 99 });
        CollectionAssert.AreEqual(new[] { 0, 1, 2, 99 }, Ids(ml, data));
        Assert.AreEqual(4L, data.GetRowCount());
    }

    [TestMethod]
    public void CreateEnumerableReusesOrAllocatesRowObjects()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Rows(3));
        var reused = ml.Data.CreateEnumerable<Row>(data, reuseRowObject: true).ToList();
        Assert.AreSame(reused[0], reused[2]);
        var fresh = ml.Data.CreateEnumerable<Row>(data, reuseRowObject: false).ToList();
        Assert.AreNotSame(fresh[0], fresh[1]);
        CollectionAssert.AreEqual(new[] { 2f, -2f }, fresh[2].Values);
        Assert.AreEqual("g1", fresh[1].Group);
    }

    private sealed class WithExtra
    {
        public int Id { get; set; }

        public float NotInData { get; set; } = 42;
    }

    [TestMethod]
    public void CreateEnumerableChecksMissingColumnsAndTypes()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Rows(2));
        var missing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Data.CreateEnumerable<WithExtra>(data, false));
        StringAssert.Contains(missing.Message, "NotInData");
        var ignored = ml.Data.CreateEnumerable<WithExtra>(data, false, ignoreMissingColumns: true).ToList();
        Assert.AreEqual(42f, ignored[1].NotInData);
        var wrongType = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Data.CreateEnumerable<WrongType>(data, false));
        StringAssert.Contains(wrongType.Message, "Can't bind the IDataView column 'Group' of type 'String' to field or property 'Group' of type 'System.Single'");
    }

    private sealed class WrongType
    {
        public float Group { get; set; }
    }

    [TestMethod]
    public void TrainTestSplitIsAPartitionFixedBySeed()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Rows(2000));
        var split = ml.Data.TrainTestSplit(data, testFraction: 0.25, seed: 7);
        var train = Ids(ml, split.TrainSet);
        var test = Ids(ml, split.TestSet);
        Assert.AreEqual(2000, train.Length + test.Length);
        Assert.AreEqual(0, train.Intersect(test).Count());
        // Binomial(2000, 0.25): mean 500, sd 19.4; ±100 is more than 5 sd.
        Assert.IsTrue(Math.Abs(test.Length - 500) < 100, $"test size {test.Length}");

        var again = ml.Data.TrainTestSplit(data, testFraction: 0.25, seed: 7);
        CollectionAssert.AreEqual(test, Ids(ml, again.TestSet));
        var other = ml.Data.TrainTestSplit(data, testFraction: 0.25, seed: 8);
        CollectionAssert.AreNotEqual(test, Ids(ml, other.TestSet));

        // Without a seed, the context's seed fixes the split.
        CollectionAssert.AreEqual(Ids(ml, new MLContext(3).Data.TrainTestSplit(data).TestSet), Ids(ml, new MLContext(3).Data.TrainTestSplit(data).TestSet));
    }

    [TestMethod]
    public void SamplingKeyKeepsGroupsTogether()
    {
        var ml = new MLContext(1);
        var rows = Rows(700);
        var data = ml.Data.LoadFromEnumerable(rows);
        var split = ml.Data.TrainTestSplit(data, testFraction: 0.5, samplingKeyColumnName: "Group", seed: 3);
        var trainGroups = ml.Data.CreateEnumerable<Row>(split.TrainSet, false).Select(r => r.Group).Distinct().ToHashSet();
        var testGroups = ml.Data.CreateEnumerable<Row>(split.TestSet, false).Select(r => r.Group).Distinct().ToHashSet();
        Assert.AreEqual(0, trainGroups.Intersect(testGroups).Count());
        Assert.AreEqual(7, trainGroups.Count + testGroups.Count);
    }

    [TestMethod]
    public void CrossValidationFoldsPartitionTheRows()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Rows(500));
        var folds = ml.Data.CrossValidationSplit(data, numberOfFolds: 4, seed: 11);
        Assert.AreEqual(4, folds.Count);
        var tests = folds.Select(f => Ids(ml, f.TestSet)).ToArray();
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 500).ToArray(), tests.SelectMany(t => t).ToArray());
        for (int i = 0; i < 4; i++)
        {
            var train = Ids(ml, folds[i].TrainSet);
            Assert.AreEqual(500, train.Length + tests[i].Length);
            Assert.AreEqual(0, train.Intersect(tests[i]).Count());
        }
        var again = ml.Data.CrossValidationSplit(data, numberOfFolds: 4, seed: 11);
        CollectionAssert.AreEqual(tests[2], Ids(ml, again[2].TestSet));
    }

    [TestMethod]
    public void ShuffleRowsIsASeededPermutation()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Rows(50));
        var shuffled = Ids(ml, ml.Data.ShuffleRows(data, seed: 5));
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 50).ToArray(), shuffled);
        CollectionAssert.AreNotEqual(Enumerable.Range(0, 50).ToArray(), shuffled);
        CollectionAssert.AreEqual(shuffled, Ids(ml, ml.Data.ShuffleRows(data, seed: 5)));
        // A pool of one row without source shuffling is the identity.
        CollectionAssert.AreEqual(Enumerable.Range(0, 50).ToArray(), Ids(ml, ml.Data.ShuffleRows(data, seed: 5, shufflePoolSize: 1, shuffleSource: false)));
    }

    [TestMethod]
    public void PoolShuffleOnlyMovesRowsWithinThePoolWindow()
    {
        // With a pool of p rows and no source shuffling, the row emitted at step i was read at step ≤ i + p − 1.
        var ml = new MLContext(1);
        var order = Ids(ml, ml.Data.ShuffleRows(ml.Data.LoadFromEnumerable(Rows(200)), seed: 2, shufflePoolSize: 4, shuffleSource: false));
        for (int i = 0; i < order.Length; i++)
            Assert.IsTrue(order[i] <= i + 3, $"row {order[i]} emitted at {i}");
    }

    [TestMethod]
    public void TakeSkipAndCache()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Rows(10));
        CollectionAssert.AreEqual(new[] { 0, 1, 2 }, Ids(ml, ml.Data.TakeRows(data, 3)));
        CollectionAssert.AreEqual(new[] { 8, 9 }, Ids(ml, ml.Data.SkipRows(data, 8)));
        Assert.AreEqual(3L, ml.Data.TakeRows(data, 3).GetRowCount());
        var cached = ml.Data.Cache(data);
        Assert.IsTrue(cached.CanShuffle);
        CollectionAssert.AreEqual(Enumerable.Range(0, 10).ToArray(), Ids(ml, cached));
        var filtered = ml.Data.FilterRowsByColumn(ml.Data.LoadFromEnumerable(new[] { 1f, 5f, 3f, 7f }.Select(v => new FloatRow { Value = v })), "Value", 3, 7);
        CollectionAssert.AreEqual(new[] { 5f, 3f }, ml.Data.CreateEnumerable<FloatRow>(filtered, false).Select(r => r.Value).ToArray());
    }

    private sealed class FloatRow
    {
        public float Value { get; set; }
    }

    [TestMethod]
    public void CursorsEnforceActiveColumnsAndTypes()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Rows(2));
        using var cursor = data.GetRowCursor(new[] { data.Schema["Id"] });
        Assert.IsTrue(cursor.IsColumnActive(data.Schema["Id"]));
        Assert.IsFalse(cursor.IsColumnActive(data.Schema["Group"]));
        Assert.ThrowsExactly<InvalidOperationException>(() => cursor.GetGetter<ReadOnlyMemory<char>>(data.Schema["Group"]));
        var wrong = Assert.ThrowsExactly<InvalidOperationException>(() => cursor.GetGetter<float>(data.Schema["Id"]));
        StringAssert.Contains(wrong.Message, "Invalid TValue in GetGetter");
        Assert.AreEqual(-1L, cursor.Position);
        Assert.IsTrue(cursor.MoveNext());
        Assert.AreEqual(0L, cursor.Position);
        DataViewRowId id = default;
        cursor.GetIdGetter()(ref id);
        Assert.AreEqual(new DataViewRowId(0, 0), id);
    }
}
