using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.StandIn.Tests.Data;

[TestClass]
public sealed class TextLoaderTests
{
    public TestContext TestContext { get; set; } = null!;

    private sealed class Review
    {
        [LoadColumn(0)]
        public string Text { get; set; } = "";

        [LoadColumn(1)]
        public float Label { get; set; }

        [LoadColumn(2, 3)]
        [ColumnName("Features")]
        public float[] Values { get; set; } = Array.Empty<float>();
    }

    private string WriteFile(string name, string content)
    {
        string directory = Path.Combine(Path.GetTempPath(), "standin-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, name);
        File.WriteAllText(path, content);
        return path;
    }

    [TestMethod]
    public void LoadsTsvWithHeaderQuotingAndVectors()
    {
        string path = WriteFile("reviews.tsv",
            "text\tlabel\tf1\tf2\n" +
            "\"a \"\"great\"\" film\"\t1\t0.5\t-2\n" +
            "\n" +
            "\"tab\tinside\"\t0\t?\t3e2\n" +
            "plain\t\t1\t2\n");
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromTextFile<Review>(path, hasHeader: true, allowQuoting: true);

        Assert.AreEqual(TextDataViewType.Instance, data.Schema["Text"].Type);
        Assert.AreEqual(NumberDataViewType.Single, data.Schema["Label"].Type);
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 2), data.Schema["Features"].Type);

        var rows = ml.Data.CreateEnumerable<Review>(data, reuseRowObject: false).ToList();
        Assert.AreEqual(3, rows.Count);
        Assert.AreEqual("a \"great\" film", rows[0].Text);
        Assert.AreEqual(1f, rows[0].Label);
        CollectionAssert.AreEqual(new[] { 0.5f, -2f }, rows[0].Values);
        Assert.AreEqual("tab\tinside", rows[1].Text);
        Assert.IsTrue(float.IsNaN(rows[1].Values[0]));
        Assert.AreEqual(300f, rows[1].Values[1]);
        Assert.AreEqual(0f, rows[2].Label, "an empty numeric field loads as 0 unless MissingRealsAsNaNs");
    }

    [TestMethod]
    public void TrimsWhitespaceAndUsesCustomSeparator()
    {
        string path = WriteFile("data.csv", "  hello world , 2 ,1,2\n");
        var ml = new MLContext(1);
        var rows = ml.Data.CreateEnumerable<Review>(ml.Data.LoadFromTextFile<Review>(path, separatorChar: ',', trimWhitespace: true), false).ToList();
        Assert.AreEqual("hello world", rows.Single().Text);
        Assert.AreEqual(2f, rows.Single().Label);
    }

    [TestMethod]
    public void OptionsOverloadHonoursMissingRealsAsNaNs()
    {
        string path = WriteFile("missing.tsv", "x\t\t1\t2\n");
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromTextFile<Review>(path, new TextLoader.Options { MissingRealsAsNaNs = true });
        Assert.IsTrue(float.IsNaN(ml.Data.CreateEnumerable<Review>(data, false).Single().Label));
    }

    [TestMethod]
    public void ColumnOverloadLoadsKeysAndText()
    {
        string path = WriteFile("keys.tsv", "3\tx\n0\ty\n9\tz\n");
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromTextFile(path, new[]
        {
            new TextLoader.Column("K", DataKind.UInt32, 0, new KeyCount(5)),
            new TextLoader.Column("S", DataKind.String, 1),
        });
        Assert.AreEqual(new KeyDataViewType(typeof(uint), 5), data.Schema["K"].Type);
        CollectionAssert.AreEqual(new uint[] { 3, 0, 0 }, data.GetColumn<uint>("K"), "9 is beyond the key count, so it is missing (0)");
        CollectionAssert.AreEqual(new[] { "x", "y", "z" }, data.GetColumn<string>("S"));
    }

    [TestMethod]
    public void BadInputFailsNamingFileLineAndColumn()
    {
        string path = WriteFile("bad.tsv", "ok\t1\t1\t1\nbad\tnot-a-number\t1\t1\n");
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromTextFile<Review>(path);
        var error = Assert.ThrowsExactly<FormatException>(() => ml.Data.CreateEnumerable<Review>(data, false).ToList());
        StringAssert.Contains(error.Message, path + ":2");
        StringAssert.Contains(error.Message, "'Label'");

        var missing = Assert.ThrowsExactly<FileNotFoundException>(() => ml.Data.LoadFromTextFile<Review>(path + ".missing"));
        StringAssert.Contains(missing.Message, "bad.tsv.missing");
    }

    [TestMethod]
    public void PocoWithoutLoadColumnIsRejected()
    {
        string path = WriteFile("x.tsv", "1\n");
        var ml = new MLContext(1);
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Data.LoadFromTextFile<NoAttributes>(path));
        StringAssert.Contains(error.Message, "NoAttributes.Value");
    }

    private sealed class NoAttributes
    {
        public float Value { get; set; }
    }

    [TestMethod]
    public void LoadsSharedSst2DevSet()
    {
        string file = Path.Combine(SharedData.Data, "sst2", "dev.tsv");
        if (!File.Exists(file))
            Assert.Inconclusive($"shared data not found at {file}");
        int expectedRows = File.ReadLines(file).Skip(1).Count(line => line.Length > 0);
        var ml = new MLContext(1);
        var rows = ml.Data.CreateEnumerable<Sst2Row>(ml.Data.LoadFromTextFile<Sst2Row>(file, hasHeader: true), false).ToList();
        Assert.AreEqual(expectedRows, rows.Count);
        Assert.IsTrue(rows.All(r => r.Label is 0f or 1f));
        Assert.AreEqual("it 's a charming and often affecting journey . ", rows[0].Sentence);
    }

    private sealed class Sst2Row
    {
        [LoadColumn(0)]
        public string Sentence { get; set; } = "";

        [LoadColumn(1)]
        public float Label { get; set; }
    }
}
