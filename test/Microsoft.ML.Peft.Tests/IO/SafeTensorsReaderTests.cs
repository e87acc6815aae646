using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.Peft.IO;
using static Microsoft.ML.Peft.Tests.IO.IoTestHelpers;

namespace Microsoft.ML.Peft.Tests.IO;

[TestClass]
public sealed class SafeTensorsReaderTests
{
    private static string Stories => Path.Combine(TestPaths.Stories260K, "model.safetensors");

    [TestMethod]
    public void Stories260K_HeaderMatchesPublishedLayout()
    {
        using var file = SafeTensorsFile.Open(Stories);
        Assert.HasCount(47, file.Names);
        Assert.AreEqual("pt", file.Metadata["format"]);
        Assert.AreEqual(8 + 4856, file.DataStart);
        Assert.AreEqual(260_032L, file.Tensors.Sum(t => t.ElementCount));
        var q = file.GetTensor("model.layers.3.self_attn.k_proj.weight");
        Assert.AreEqual(CheckpointDType.F32, q.DType);
        CollectionAssert.AreEqual(new[] { 32, 64 }, q.Shape.ToArray());
        Assert.AreEqual("model.embed_tokens.weight", file.Names[0]);
    }

    /// <summary>
    /// Independent reference: the original llama2.c checkpoint stories260K.bin stores the same fp32 weights (tensors
    /// other than q/k, which the conversion permuted) at offsets given by its documented layout.
    /// </summary>
    [TestMethod]
    public void Stories260K_ValuesEqualTheOriginalLlama2cCheckpoint()
    {
        byte[] raw = File.ReadAllBytes(Path.Combine(TestPaths.Stories260K, "stories260K.bin"));
        float[] legacy = MemoryMarshal.Cast<byte, float>(raw.AsSpan(28)).ToArray();
        const int dim = 64, hidden = 172, layers = 5, kvDim = 32, vocab = 512;
        int embedding = 0, rmsAtt = vocab * dim, wq = rmsAtt + layers * dim, wk = wq + layers * dim * dim,
            wv = wk + layers * kvDim * dim, wo = wv + layers * kvDim * dim, rmsFfn = wo + layers * dim * dim,
            w1 = rmsFfn + layers * dim, w2 = w1 + layers * hidden * dim, w3 = w2 + layers * dim * hidden, rmsFinal = w3 + layers * hidden * dim;

        using var file = SafeTensorsFile.Open(Stories);
        void Check(string name, int offset)
        {
            var actual = file.GetTensor(name).AsFloat32();
            Assert.IsTrue(actual.SequenceEqual(legacy.AsSpan(offset, actual.Length)), name);
        }
        Check("model.embed_tokens.weight", embedding);
        Check("model.norm.weight", rmsFinal);
        for (int l = 0; l < layers; l++)
        {
            Check($"model.layers.{l}.input_layernorm.weight", rmsAtt + l * dim);
            Check($"model.layers.{l}.self_attn.v_proj.weight", wv + l * kvDim * dim);
            Check($"model.layers.{l}.self_attn.o_proj.weight", wo + l * dim * dim);
            Check($"model.layers.{l}.post_attention_layernorm.weight", rmsFfn + l * dim);
            Check($"model.layers.{l}.mlp.gate_proj.weight", w1 + l * hidden * dim);
            Check($"model.layers.{l}.mlp.down_proj.weight", w2 + l * dim * hidden);
            Check($"model.layers.{l}.mlp.up_proj.weight", w3 + l * hidden * dim);
        }
    }

    [TestMethod]
    public unsafe void F32_IsZeroCopyFromTheMapping()
    {
        using var file = SafeTensorsFile.Open(Stories);
        var first = file.Tensors[0];
        var second = file.Tensors[1];
        var span = first.AsFloat32();
        Assert.AreEqual(first.DataPointer, (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetReference(span)));
        // Contiguous layout: the second tensor starts right where the first ends, in the same mapping.
        Assert.AreEqual(first.ByteLength, (long)second.DataPointer - (long)first.DataPointer);
        Assert.AreEqual(0L, (long)first.DataPointer % 8, "data area is 8-byte aligned");
    }

    [TestMethod]
    public void MixedDTypes_ValuesMatchPyTorch()
    {
        var expected = ReadExpected(TestPaths.Fixture("io", "mixed_dtypes.json"));
        using var file = SafeTensorsFile.Open(TestPaths.Fixture("io", "mixed_dtypes.safetensors"));
        CollectionAssert.AreEqual(ExpectedOrder(TestPaths.Fixture("io", "mixed_dtypes.json")), file.Names.ToArray());
        foreach (var (name, e) in expected)
        {
            var t = file.GetTensor(name);
            Assert.AreEqual(e.DType, t.DType.ToSafeTensorsName(), name);
            CollectionAssert.AreEqual(e.Shape, t.Shape.ToArray(), name);
            var values = t.ToFloat32Array();
            Assert.HasCount(e.Values.Length, values);
            for (int i = 0; i < values.Length; i++) Assert.AreEqual((float)e.Values[i], values[i], $"{name}[{i}]");
        }
        // Raw typed access (no conversion): the integer payloads exactly, F64 at full precision.
        CollectionAssert.AreEqual(new sbyte[] { -128, 127, 3, -4 }, file.GetTensor("i8").AsSpan<sbyte>().ToArray());
        CollectionAssert.AreEqual(new byte[] { 255, 0, 17 }, file.GetTensor("u8").AsSpan<byte>().ToArray());
        CollectionAssert.AreEqual(new long[] { -(1L << 40), 7 }, file.GetTensor("i64").AsSpan<long>().ToArray());
        CollectionAssert.AreEqual(expected["f64"].Values, file.GetTensor("f64").AsSpan<double>().ToArray());
        Assert.AreEqual(0, file.GetTensor("scalar").Rank);
    }

    [TestMethod]
    public void WrongTypedAccess_IsRefusedWithTheTensorName()
    {
        using var file = SafeTensorsFile.Open(TestPaths.Fixture("io", "mixed_dtypes.safetensors"));
        var bf16 = file.GetTensor("bf16");
        var e1 = Assert.Throws<InvalidOperationException>(() => bf16.AsFloat32());
        StringAssert.Contains(e1.Message, "bf16");
        Assert.Throws<InvalidOperationException>(() => bf16.AsSpan<float>());
        Assert.AreEqual(69, bf16.AsSpan<ushort>().Length);
        var missing = Assert.Throws<KeyNotFoundException>(() => file.GetTensor("nope"));
        StringAssert.Contains(missing.Message, "nope");
        StringAssert.Contains(missing.Message, "mixed_dtypes.safetensors");
    }

    [TestMethod]
    public void UseAfterDispose_Throws()
    {
        var file = SafeTensorsFile.Open(Stories);
        var view = file.GetTensor("model.norm.weight");
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() => view.AsFloat32());
    }

    [TestMethod]
    public void FromBytes_ReadsAnInMemoryFile()
    {
        var writer = new SafeTensorsWriter();
        writer.Add("w", new float[] { 1, 2, 3, 4 }, 2, 2);
        using var file = SafeTensorsFile.FromBytes(writer.ToArray(), "adapter");
        CollectionAssert.AreEqual(new float[] { 1, 2, 3, 4 }, file.GetTensor("w").AsFloat32().ToArray());
    }

    [TestMethod]
    public void EmptyTensorsAndNoTensors_AreValid()
    {
        using var none = SafeTensorsFile.FromBytes(RawSafeTensors("{}      ", 0));
        Assert.HasCount(0, none.Names);
        using var zero = SafeTensorsFile.FromBytes(RawSafeTensors(
            """{"a":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}""", 2));
        Assert.AreEqual(0L, zero.GetTensor("a").ElementCount);
        Assert.AreEqual(0, zero.GetTensor("a").AsFloat32().Length);
    }

    [TestMethod]
    [DataRow("""{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}""", 4, "unknown dtype 'F33'", "a")]
    [DataRow("""{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", 4, "shape entry -1", "a")]
    [DataRow("""{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}""", 4, "shape entry 1.5", "a")]
    [DataRow("""{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}""", 4, "shape entry", "a")]
    [DataRow("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", 8, "begin > end", "a")]
    [DataRow("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4, "run past the 4-byte data area", "a")]
    [DataRow("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}""", 4, "needs 8", "a")]
    [DataRow("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "overlap tensor 'a'", "b")]
    [DataRow("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""", 12, "gap of 4 bytes", "b")]
    [DataRow("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 9, "cover 4 bytes but the data area", null)]
    [DataRow("""{"a":{"dtype":"F32","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,4]}}""", 4, "overflows", "a")]
    [DataRow("""{"a":{"dtype":"F64","shape":[2147483647,2147483647,2],"data_offsets":[0,4]}}""", 4, "overflows", "a")]
    [DataRow("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]}}""", 4, "not a non-negative 64-bit integer", "a")]
    [DataRow("""{"a":{"dtype":"F32","shape":[1]}}""", 4, "data_offsets", "a")]
    [DataRow("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}""", 4, "data_offsets", "a")]
    [DataRow("""{"a":{"shape":[1],"data_offsets":[0,4]}}""", 4, "dtype", "a")]
    [DataRow("""{"a":[1,2]}""", 0, "must be an object", "a")]
    [DataRow("""{"__metadata__":{"format":1}}""", 0, "value of 'format' must be a string", "__metadata__")]
    [DataRow("""{"__metadata__":[1]}""", 0, "must be an object of strings", "__metadata__")]
    [DataRow("""{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}""", 2, "appears twice", "a")]
    [DataRow("""[1,2,3]""", 0, "must be a JSON object", null)]
    [DataRow("""{"a":""", 0, "not valid UTF-8 JSON", null)]
    public void BadHeader_IsRejectedNamingFileAndTensor(string header, int dataLength, string expectedMessage, string? tensor)
    {
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.FromBytes(RawSafeTensors(header, dataLength), "bad.safetensors"));
        StringAssert.Contains(e.Message, expectedMessage);
        StringAssert.StartsWith(e.Message, "bad.safetensors: ");
        Assert.AreEqual("bad.safetensors", e.FilePath);
        Assert.AreEqual(tensor, e.TensorName);
    }

    [TestMethod]
    public void BadLength_IsRejectedBeforeReadingTheHeader()
    {
        var e1 = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.FromBytes(new byte[5], "tiny"));
        StringAssert.Contains(e1.Message, "5 bytes");
        var e2 = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.FromBytes(RawSafeTensors("{}", 0, declaredLength: 1000), "x"));
        StringAssert.Contains(e2.Message, "runs past the end");
        var e3 = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.FromBytes(RawSafeTensors("{}", 0, declaredLength: 200_000_000), "x"));
        StringAssert.Contains(e3.Message, "exceeds the 100000000-byte limit");
        var e4 = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.FromBytes(RawSafeTensors("{}", 0, declaredLength: long.MaxValue), "x"));
        StringAssert.Contains(e4.Message, "exceeds");
        var bytes = RawSafeTensors("{\"__metadata__\":{\"a\":\"xx\"}}", 0);
        bytes[8 + 21] = 0xBE; // inside a string: only a full UTF-8 check catches it
        StringAssert.Contains(Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.FromBytes(bytes)).Message, "not valid UTF-8");
    }

    [TestMethod]
    public void OpenFromDisk_RejectsTruncatedFileNamingIt()
    {
        using var temp = new TempFolder();
        string path = temp.File("cut.safetensors");
        byte[] whole = File.ReadAllBytes(TestPaths.Fixture("io", "mixed_dtypes.safetensors"));
        File.WriteAllBytes(path, whole[..^3]);
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(path));
        StringAssert.Contains(e.Message, path);
    }
}
