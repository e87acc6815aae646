using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Microsoft.ML.Peft.IO;
using static Microsoft.ML.Peft.Tests.IO.IoTestHelpers;

namespace Microsoft.ML.Peft.Tests.IO;

[TestClass]
public sealed class TorchCheckpointTests
{
    private static string Fixture(string name) => TestPaths.Fixture("io", name);

    private static void AssertMatchesPyTorch(ITensorSource source, string jsonName)
    {
        var expected = ReadExpected(Fixture(jsonName));
        CollectionAssert.AreEqual(ExpectedOrder(Fixture(jsonName)), source.Names.ToArray());
        foreach (var (name, e) in expected)
        {
            var t = source.GetTensor(name);
            Assert.AreEqual(e.DType, t.DType.ToSafeTensorsName(), name);
            CollectionAssert.AreEqual(e.Shape, t.Shape.ToArray(), name);
            var values = t.ToFloat32Array();
            Assert.HasCount(e.Values.Length, values, name);
            for (int i = 0; i < values.Length; i++) Assert.AreEqual((float)e.Values[i], values[i], $"{name}[{i}]");
        }
    }

    [TestMethod]
    public void StateDict_AllDTypesAndViews_MatchPyTorch()
    {
        using var file = TorchCheckpointFile.Open(Fixture("torch_state_dict.bin"));
        AssertMatchesPyTorch(file, "torch_state_dict.json");
        // Exact integer payloads beyond fp32 precision.
        CollectionAssert.AreEqual(new long[] { -3, 0, 1L << 40, -(1L << 62) }, file.GetTensor("i64").AsSpan<long>().ToArray());
        CollectionAssert.AreEqual(new[] { -7, 8, int.MaxValue, int.MinValue }, file.GetTensor("i32").AsSpan<int>().ToArray());
        Assert.IsFalse(file.Contains("not_a_tensor"));
    }

    [TestMethod]
    public void StateDict_SharedAndTiedStorage_AreZeroCopyViewsOfOneMapping()
    {
        using var file = TorchCheckpointFile.Open(Fixture("torch_state_dict.bin"));
        var a = file.GetTensor("shared_a");
        var b = file.GetTensor("shared_b");
        Assert.AreEqual(4 * sizeof(float), (long)b.DataPointer - (long)a.DataPointer, "shared_b starts 4 floats into the same storage");
        Assert.AreEqual(file.GetTensor("tied_1").DataPointer, file.GetTensor("tied_2").DataPointer);
        Assert.AreEqual(0L, (long)a.DataPointer % 64, "torch.save aligns stored entries to 64 bytes");
    }

    [TestMethod]
    public void StateDict_NonContiguousViewsAreGathered()
    {
        using var file = TorchCheckpointFile.Open(Fixture("torch_state_dict.bin"));
        // base = arange(12).reshape(3, 4); transposed[i, j] = base[j, i] = 4j + i
        var transposed = file.GetTensor("transposed").AsFloat32().ToArray();
        CollectionAssert.AreEqual(new float[] { 0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11 }, transposed);
        CollectionAssert.AreEqual(new float[] { 1, -2, 3, 1, -2, 3 }, file.GetTensor("expanded").AsFloat32().ToArray());
    }

    [TestMethod]
    public void Protocol4_MatchesPyTorch()
    {
        using var file = TorchCheckpointFile.Open(Fixture("torch_protocol4.bin"));
        AssertMatchesPyTorch(file, "torch_protocol4.json");
    }

    [TestMethod]
    public void CheckpointOpen_RoutesBinFilesToTheTorchReader()
    {
        using var source = Checkpoint.Open(Fixture("torch_protocol4.bin"));
        Assert.IsInstanceOfType<TorchCheckpointFile>(source);
    }

    [TestMethod]
    [DataRow("malicious_os_system.bin", "os.system")]
    [DataRow("malicious_eval_stack_global.bin", "builtins.eval")]
    [DataRow("malicious_after_tensor.bin", "posix.system")]
    public void MaliciousGlobal_IsRefusedNamingIt(string file, string global)
    {
        var e = Assert.Throws<PickleFormatException>(() => TorchCheckpointFile.Open(Fixture(file)));
        Assert.AreEqual(global, e.RefusedGlobal);
        StringAssert.Contains(e.Message, $"'{global}'");
        StringAssert.Contains(e.Message, file);
        StringAssert.Contains(e.Message, "not on the allow-list");
    }

    [TestMethod]
    public void LegacyFormat_IsRefusedWithAHint()
    {
        var e = Assert.Throws<PickleFormatException>(() => Checkpoint.Open(Fixture("legacy_format.bin")));
        StringAssert.Contains(e.Message, "before PyTorch 1.6");
    }

    // ---- hand-made archives for the structural checks ----

    private static byte[] Pickle(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    private static byte[] Unicode(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        var r = new byte[5 + b.Length];
        r[0] = (byte)'X';
        BinaryPrimitives.WriteInt32LittleEndian(r.AsSpan(1), b.Length);
        b.CopyTo(r, 5);
        return r;
    }

    /// <summary>{"w": _rebuild_tensor_v2(storage('0', FloatStorage, numel), offset, size, stride)} with one-byte ints.</summary>
    private static byte[] OneTensorPickle(byte numel, byte offset, byte[] size, byte[] stride)
    {
        byte[] Tuple(byte[] items) => Pickle([(byte)'('], items.SelectMany(i => new byte[] { (byte)'K', i }).ToArray(), [(byte)'t']);
        return Pickle(
            [0x80, 2, (byte)'}', (byte)'('], Unicode("w"),
            Encoding.ASCII.GetBytes("ctorch._utils\n_rebuild_tensor_v2\n"), [(byte)'(', (byte)'('],
            Unicode("storage"), Encoding.ASCII.GetBytes("ctorch\nFloatStorage\n"), Unicode("0"), Unicode("cpu"),
            [(byte)'K', numel, (byte)'t', (byte)'Q', (byte)'K', offset], Tuple(size), Tuple(stride),
            [0x89, (byte)'N', (byte)'t', (byte)'R', (byte)'u', (byte)'.']);
    }

    private static string WriteZip(TempFolder temp, params (string Name, byte[] Data)[] entries)
    {
        string path = temp.File("model.bin");
        using (var zip = new ZipArchive(File.Create(path), ZipArchiveMode.Create))
        {
            foreach (var (name, data) in entries)
            {
                using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
        }
        return path;
    }

    private static byte[] Floats(params float[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    [TestMethod]
    public void HandMadeArchive_StridedViewWithOffset()
    {
        using var temp = new TempFolder();
        // storage 0..5; view offset 1, size (2, 2), stride (1, 2): [[1, 3], [2, 4]]
        string path = WriteZip(temp, ("a/data.pkl", OneTensorPickle(6, 1, [2, 2], [1, 2])), ("a/data/0", Floats(0, 1, 2, 3, 4, 5)));
        using var file = TorchCheckpointFile.Open(path);
        CollectionAssert.AreEqual(new float[] { 1, 3, 2, 4 }, file.GetTensor("w").AsFloat32().ToArray());
    }

    [TestMethod]
    public void HandMadeArchive_DeflatedEntriesAreDecompressed()
    {
        using var temp = new TempFolder();
        string path = temp.File("model.bin");
        using (var zip = new ZipArchive(File.Create(path), ZipArchiveMode.Create))
        {
            foreach (var (name, data) in new[] { ("a/data.pkl", OneTensorPickle(3, 0, [3], [1])), ("a/data/0", Floats(7, 8, 9)) })
            {
                using var s = zip.CreateEntry(name, CompressionLevel.Optimal).Open();
                s.Write(data);
            }
        }
        using var file = TorchCheckpointFile.Open(path);
        CollectionAssert.AreEqual(new float[] { 7, 8, 9 }, file.GetTensor("w").AsFloat32().ToArray());
    }

    [TestMethod]
    [DataRow((byte)6, (byte)3, new byte[] { 2, 2 }, new byte[] { 2, 1 }, "reaches past its storage")]   // last element 3+2+1 = 6
    [DataRow((byte)9, (byte)0, new byte[] { 3 }, new byte[] { 1 }, "needs 36 bytes")]                   // entry holds 24
    public void HandMadeArchive_OutOfBoundsViewsAreRefused(byte numel, byte offset, byte[] size, byte[] stride, string message)
    {
        using var temp = new TempFolder();
        string path = WriteZip(temp, ("a/data.pkl", OneTensorPickle(numel, offset, size, stride)), ("a/data/0", Floats(0, 1, 2, 3, 4, 5)));
        var e = Assert.Throws<PickleFormatException>(() => TorchCheckpointFile.Open(path));
        StringAssert.Contains(e.Message, message);
    }

    [TestMethod]
    public void HandMadeArchive_StructuralProblemsAreRefused()
    {
        using var temp = new TempFolder();
        byte[] pkl = OneTensorPickle(1, 0, [1], [1]);
        (string, byte[])[][] cases =
        [
            [("a/../../etc/data.pkl", pkl)],
            [("a/data.pkl", pkl), ("b/data/0", Floats(1))],
            [("data.pkl", pkl)],
            [("a/data.pkl", pkl)],
            [("a/data.pkl", pkl), ("a/data/0", Floats(1)), ("a/byteorder", "big"u8.ToArray())],
            [("a/data.pkl", [0x80, 2, (byte)'c'])],
            [("a/data.pkl", [0x80, 2, (byte)'i', (byte)'o', (byte)'s', 10, (byte)'x', 10, (byte)'.'])],
            [("a/data.pkl", [0x80, 2, (byte)'N'])],
        ];
        string[] messages =
        [
            "not a safe relative path", "two top folders", "not inside a top folder", "has no zip entry", "only little-endian",
            "not terminated by a newline", "opcode 0x69", "ends without STOP",
        ];
        for (int i = 0; i < cases.Length; i++)
        {
            string path = WriteZip(temp, cases[i]);
            var e = Assert.Throws<PickleFormatException>(() => TorchCheckpointFile.Open(path), $"case {i}");
            StringAssert.Contains(e.Message, messages[i], $"case {i}");
            File.Delete(path);
        }
    }
}
