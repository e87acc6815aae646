using System.Runtime.InteropServices;
using Microsoft.ML.Peft.IO;
using static Microsoft.ML.Peft.Tests.IO.IoTestHelpers;

namespace Microsoft.ML.Peft.Tests.IO;

[TestClass]
public sealed class SafeTensorsWriterTests
{
    private static readonly float[] ZeroToFive = [0, 1, 2, 3, 4, 5];

    /// <summary>Byte-exact expected output from the reference implementation's own unit tests (huggingface/safetensors, tensor.rs: test_serialization).</summary>
    [TestMethod]
    public void Serialize_MatchesReferenceBytes()
    {
        var writer = new SafeTensorsWriter(metadata: null);
        writer.Add("attn.0", ZeroToFive, 1, 2, 3);
        byte[] expected =
        [
            64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
            116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
            58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
            101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
            0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
        ];
        CollectionAssert.AreEqual(expected, writer.ToArray());
    }

    /// <summary>Reference test_serialization_forced_alignement: the header is padded with spaces to a multiple of 8.</summary>
    [TestMethod]
    public void Serialize_PadsHeaderLikeReference()
    {
        var writer = new SafeTensorsWriter(metadata: null);
        writer.Add("attn0", ZeroToFive, 1, 1, 2, 3);
        byte[] expected =
        [
            72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
            121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
            91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
            115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
            32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
            160, 64,
        ];
        CollectionAssert.AreEqual(expected, writer.ToArray());
    }

    /// <summary>Reference test_empty: no tensors, with and without metadata.</summary>
    [TestMethod]
    public void Serialize_EmptyMatchesReference()
    {
        CollectionAssert.AreEqual(new byte[] { 8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32 },
            new SafeTensorsWriter(metadata: null).ToArray());
        byte[] withMetadata =
        [
            40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
            95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
            116, 34, 125, 125, 32, 32, 32, 32, 32,
        ];
        CollectionAssert.AreEqual(withMetadata,
            new SafeTensorsWriter(new Dictionary<string, string> { ["framework"] = "pt" }).ToArray());
    }

    /// <summary>Re-saving the real stories260K checkpoint reproduces the file byte for byte.</summary>
    [TestMethod]
    public void Rewrite_Stories260K_IsByteIdentical()
    {
        string original = Path.Combine(TestPaths.Stories260K, "model.safetensors");
        using var source = SafeTensorsFile.Open(original);
        var writer = new SafeTensorsWriter();
        foreach (var t in source.Tensors) writer.Add(t);
        CollectionAssert.AreEqual(File.ReadAllBytes(original), writer.ToArray());
    }

    /// <summary>Every dtype round-trips, and tensors are laid out by descending dtype size then name, as the reference writer does.</summary>
    [TestMethod]
    public void RoundTrip_MixedDTypes_ReferenceLayout()
    {
        using var source = SafeTensorsFile.Open(TestPaths.Fixture("io", "mixed_dtypes.safetensors"));
        var writer = new SafeTensorsWriter();
        foreach (var t in source.Tensors) writer.Add(t);
        using var copy = SafeTensorsFile.FromBytes(writer.ToArray());
        CollectionAssert.AreEqual(
            new[] { "i64", "f64", "f32", "scalar", "i32", "bf16", "f16", "i16", "i8", "u8", "bool" },
            copy.Names.ToArray());
        foreach (var t in source.Tensors)
        {
            var c = copy.GetTensor(t.Name);
            Assert.AreEqual(t.DType, c.DType);
            CollectionAssert.AreEqual(t.Shape.ToArray(), c.Shape.ToArray());
            Assert.IsTrue(t.Bytes.SequenceEqual(c.Bytes), t.Name);
        }
        foreach (var t in copy.Tensors)
            Assert.AreEqual(0L, ((long)t.DataPointer - (long)copy.Tensors[0].DataPointer) % Math.Min(8, t.DType.SizeInBytes()) , t.Name);
    }

    [TestMethod]
    public void Add_RejectsBadInput()
    {
        var writer = new SafeTensorsWriter();
        writer.Add("a", new float[] { 1, 2 }, 2);
        StringAssert.Contains(Assert.Throws<ArgumentException>(() => writer.Add("a", new float[] { 1 }, 1)).Message, "already added");
        StringAssert.Contains(Assert.Throws<ArgumentException>(() => writer.Add("b", new float[] { 1, 2, 3 }, 2)).Message, "needs 8 bytes, got 12");
        StringAssert.Contains(Assert.Throws<ArgumentException>(() => writer.Add("__metadata__", new float[] { 1 }, 1)).Message, "reserved");
        Assert.Throws<ArgumentException>(() => writer.Add("c", CheckpointDType.U8, [-1], Array.Empty<byte>()));
    }

    [TestMethod]
    public void Save_IsAtomic_ReadersOfTheOldFileAreUnaffected()
    {
        using var temp = new TempFolder();
        string path = temp.File("model.safetensors");
        var first = new SafeTensorsWriter();
        first.Add("w", new float[] { 1, 2, 3 }, 3);
        first.Save(path);

        using var oldReader = SafeTensorsFile.Open(path);
        var second = new SafeTensorsWriter();
        second.Add("w", new float[] { 7, 8, 9, 10 }, 4);
        second.Save(path);

        // The old mapping still sees the old inode; a new open sees the new content; no temp files are left.
        CollectionAssert.AreEqual(new float[] { 1, 2, 3 }, oldReader.GetTensor("w").AsFloat32().ToArray());
        using var newReader = SafeTensorsFile.Open(path);
        CollectionAssert.AreEqual(new float[] { 7, 8, 9, 10 }, newReader.GetTensor("w").AsFloat32().ToArray());
        CollectionAssert.AreEqual(new[] { "model.safetensors" }, Directory.GetFiles(temp.Path).Select(Path.GetFileName).ToArray());
    }

    [TestMethod]
    public void AtomicFile_FailedWriteLeavesTargetAndNoTempFile()
    {
        using var temp = new TempFolder();
        string path = temp.File("config.json");
        AtomicFile.WriteAllText(path, "old");
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.Write("partial"u8);
            throw new InvalidOperationException("disk full");
        }));
        Assert.AreEqual("old", File.ReadAllText(path));
        Assert.HasCount(1, Directory.GetFiles(temp.Path));
    }

    [TestMethod]
    public void Add_ByteTensors_AndFloatMemoryAreNotCopiedUntilSave()
    {
        var data = new float[] { 1, 2 };
        var writer = new SafeTensorsWriter();
        writer.Add("w", data, 2);
        data[1] = 5; // the writer references the caller's memory until it writes
        using var file = SafeTensorsFile.FromBytes(writer.ToArray());
        CollectionAssert.AreEqual(new float[] { 1, 5 }, file.GetTensor("w").AsFloat32().ToArray());
        Assert.AreEqual(8, MemoryMarshal.AsBytes(file.GetTensor("w").AsFloat32()).Length);
    }
}
