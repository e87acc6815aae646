using Microsoft.ML.Peft.IO;
using static Microsoft.ML.Peft.Tests.IO.IoTestHelpers;

namespace Microsoft.ML.Peft.Tests.IO;

[TestClass]
public sealed class ShardedTensorSourceTests
{
    private static void WriteShards(TempFolder temp)
    {
        var one = new SafeTensorsWriter();
        one.Add("embed.weight", new float[] { 1, 2, 3, 4 }, 2, 2);
        one.Add("layer.0.weight", new float[] { 5, 6 }, 2);
        one.Save(temp.File("model-00001-of-00002.safetensors"));
        var two = new SafeTensorsWriter();
        two.Add("layer.1.weight", CheckpointDType.BF16, [2], new byte[] { 0x80, 0x3F, 0x00, 0xC0 }); // 1.0, -2.0
        two.Save(temp.File("model-00002-of-00002.safetensors"));
    }

    private static void WriteIndex(TempFolder temp, string weightMap) =>
        File.WriteAllText(temp.File("model.safetensors.index.json"),
            "{\"metadata\": {\"total_size\": 28}, \"weight_map\": {" + weightMap.Replace('\'', '"') + "}}");

    // Single quotes stand for double quotes in these weight-map snippets.
    private const string GoodMap =
        "'embed.weight': 'model-00001-of-00002.safetensors', 'layer.1.weight': 'model-00002-of-00002.safetensors', 'layer.0.weight': 'model-00001-of-00002.safetensors'";

    [TestMethod]
    public void FolderWithIndex_OpensAsOneSource()
    {
        using var temp = new TempFolder();
        WriteShards(temp);
        WriteIndex(temp, GoodMap);
        using var source = Checkpoint.Open(temp.Path);
        var sharded = (ShardedTensorSource)source;
        CollectionAssert.AreEqual(new[] { "embed.weight", "layer.1.weight", "layer.0.weight" }, source.Names.ToArray());
        Assert.AreEqual("28", source.Metadata["total_size"]);
        Assert.HasCount(2, sharded.Shards);
        CollectionAssert.AreEqual(new float[] { 1, -2 }, source.GetTensor("layer.1.weight").ToFloat32Array());
        CollectionAssert.AreEqual(new float[] { 5, 6 }, source.GetTensor("layer.0.weight").AsFloat32().ToArray());
    }

    [TestMethod]
    [DataRow("'a': 'missing.safetensors'", "does not exist", "a")]
    [DataRow("'nope': 'model-00001-of-00002.safetensors'", "which has no such tensor", "nope")]
    [DataRow("'a': '../model-00001-of-00002.safetensors'", "plain file name", "a")]
    [DataRow("'a': '/etc/passwd'", "plain file name", "a")]
    [DataRow("'a': 3", "must be a shard file name", "a")]
    public void BadIndex_IsRejectedNamingTheTensor(string map, string message, string tensor)
    {
        using var temp = new TempFolder();
        WriteShards(temp);
        WriteIndex(temp, map);
        var e = Assert.Throws<CheckpointFormatException>(() => ShardedTensorSource.Open(temp.File("model.safetensors.index.json")));
        StringAssert.Contains(e.Message, message);
        StringAssert.Contains(e.Message, "model.safetensors.index.json");
        Assert.AreEqual(tensor, e.TensorName);
    }

    [TestMethod]
    public void IndexWithoutWeightMap_IsRejected()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp.File("model.safetensors.index.json"), """{"metadata": {}}""");
        var e = Assert.Throws<CheckpointFormatException>(() => Checkpoint.Open(temp.Path));
        StringAssert.Contains(e.Message, "weight_map");
    }

    [TestMethod]
    public void EmptyFolder_ListsWhatWasLookedFor()
    {
        using var temp = new TempFolder();
        var e = Assert.Throws<FileNotFoundException>(() => Checkpoint.Open(temp.Path));
        StringAssert.Contains(e.Message, "model.safetensors.index.json");
    }
}
