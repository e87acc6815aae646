using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Microsoft.ML.Peft.Tests.Reference;

/// <summary>
/// Checks that the PyTorch reference fixtures under Fixtures/reference (written by build/reference/*.py) are present,
/// readable and self-consistent. These tests parse the files with their own minimal safetensors reader so that they do
/// not depend on the library's checkpoint code; the parity tests against the engine live with the models.
/// </summary>
[TestClass]
public sealed class FixtureFormatTests
{
    private static readonly string Root = TestPaths.Fixture("reference");

    private static readonly string[] Architectures = ["bert", "roberta", "distilbert", "gpt2", "gpt_neox", "llama_gqa", "qwen2"];

    private static IEnumerable<string> RequiredSafetensors()
    {
        yield return "layers/bert_encoder_layer.safetensors";
        yield return "layers/llama_decoder_layer.safetensors";
        yield return "layers/ops.safetensors";
        yield return "stories260k/stories260k.safetensors";
        foreach (var arch in Architectures)
        {
            bool encoder = arch is "bert" or "roberta" or "distilbert";
            yield return $"models/{arch}/model.safetensors";
            yield return $"models/{arch}/token_classification/model.safetensors";
            yield return $"models/{arch}/expected.safetensors";
            if (!encoder)
            {
                yield return $"models/{arch}/sequence_classification/model.safetensors";
                yield return $"models/{arch}/expected_token_classification.safetensors";
            }
        }

        // build/reference/trainer_reference.py: three LoRA training steps on stories260K from a PEFT-format adapter.
        yield return "trainer/adapter/adapter_model.safetensors";
        yield return "trainer/steps.safetensors";
        // build/reference/prompts_reference.py: prefix / prompt / adaption attention and P-tuning encoders on tiny Llama and BERT.
        yield return "prompts/expected.safetensors";
        // build/reference/adapters_reference.py: bottleneck adapter and AdapterFusion outputs and gradients.
        yield return "adapters/adapters.safetensors";
        // build/reference/reft_reference.py: LoReFT and DiReFT on tiny Llama, outputs and gradients.
        yield return "reft/reft.safetensors";
    }

    [TestMethod]
    public void EveryRequiredFixtureExists_AndEverySafetensorsFileTilesItsDataAreaExactly()
    {
        foreach (var relative in RequiredSafetensors())
        {
            Assert.IsTrue(File.Exists(Path.Combine(Root, relative)), $"missing fixture {relative}");
        }

        var all = Directory.GetFiles(Root, "*.safetensors", SearchOption.AllDirectories);
        Assert.AreEqual(RequiredSafetensors().Count(), all.Length, "unexpected number of .safetensors fixtures");
        foreach (var path in all)
        {
            var file = SafetensorsFile.Open(path);
            Assert.AreEqual("pt", file.Metadata.GetValueOrDefault("format"), $"{path}: __metadata__.format");
            Assert.IsTrue(file.Tensors.Count > 0, $"{path}: no tensors");

            // Tensors must cover the data area with no gap and no overlap, and each size must match dtype x shape.
            long cursor = 0;
            foreach (var (name, t) in file.Tensors.OrderBy(kv => kv.Value.Begin))
            {
                Assert.AreEqual(cursor, t.Begin, $"{path}: tensor '{name}' does not start where the previous one ended");
                Assert.AreEqual(t.ElementCount * ElementSize(t.DType), t.End - t.Begin, $"{path}: tensor '{name}' size");
                cursor = t.End;
            }

            Assert.AreEqual(new FileInfo(path).Length - file.DataStart, cursor, $"{path}: data area length");
        }
    }

    [TestMethod]
    public void JsonTensorTables_MatchTheSafetensorsHeadersTheyDescribe()
    {
        var described = 0;
        foreach (var jsonPath in Directory.GetFiles(Root, "*.json", SearchOption.AllDirectories))
        {
            var stPath = Path.ChangeExtension(jsonPath, ".safetensors");
            if (!File.Exists(stPath)) continue; // config.json files describe models, not tensors
            using var doc = JsonDocument.Parse(File.ReadAllBytes(jsonPath));
            var table = doc.RootElement.GetProperty("tensors");
            var file = SafetensorsFile.Open(stPath);
            CollectionAssert.AreEquivalent(
                file.Tensors.Keys.ToList(),
                table.EnumerateObject().Select(p => p.Name).ToList(),
                $"{jsonPath}: tensor names differ from {stPath}");
            foreach (var entry in table.EnumerateObject())
            {
                var t = file.Tensors[entry.Name];
                Assert.AreEqual(TorchDTypeName(t.DType), entry.Value.GetProperty("dtype").GetString(), $"{jsonPath}: '{entry.Name}' dtype");
                CollectionAssert.AreEqual(
                    t.Shape,
                    entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                    $"{jsonPath}: '{entry.Name}' shape");
            }

            described++;
        }

        // The layer, stories260K, adapters, ReFT and per-architecture expected-output files carry a JSON tensor table; the
        // checkpoints (model.safetensors), the decoders' token-classification expectations and the trainer fixture do not.
        Assert.AreEqual(6 + Architectures.Length, described, "tensor tables found");
    }

    [TestMethod]
    public void LayerFixtures_LossValueIsTheSumOfOutputTimesProjection()
    {
        foreach (var name in new[] { "bert_encoder_layer", "llama_decoder_layer" })
        {
            var file = SafetensorsFile.Open(Path.Combine(Root, "layers", name + ".safetensors"));
            var output = file.ReadFloats("output.hidden_states");
            var projection = file.ReadFloats("loss.projection");
            Assert.AreEqual(2 * 7 * 32, output.Length, $"{name}: output size");
            double sum = 0;
            for (int i = 0; i < output.Length; i++) sum += (double)output[i] * projection[i];
            float loss = file.ReadFloats("loss.value").Single();
            Assert.AreEqual(sum, loss, 1e-5 * Math.Max(1, Math.Abs(sum)), $"{name}: loss.value");
            Assert.IsTrue(file.Tensors.ContainsKey("grad.input.hidden_states"), $"{name}: input gradient");
        }
    }

    [TestMethod]
    public void OpsFixture_SoftmaxRowsSumToOne_AndScheduleStartsAtZeroAndPeaksAtBaseRate()
    {
        var file = SafetensorsFile.Open(Path.Combine(Root, "layers", "ops.safetensors"));
        var softmax = file.ReadFloats("softmax.output");
        var cols = (int)file.Tensors["softmax.output"].Shape[^1];
        for (int row = 0; row < softmax.Length / cols; row++)
        {
            double s = 0;
            for (int c = 0; c < cols; c++) s += softmax[row * cols + c];
            Assert.AreEqual(1.0, s, 1e-6, $"softmax row {row}");
        }

        var lr = file.ReadFloats("schedule.linear_warmup.lr");
        Assert.AreEqual(101, lr.Length);
        Assert.AreEqual(0f, lr[0]);
        Assert.AreEqual(2e-3, lr[6], 1e-9); // warm-up of 6 steps ends at the base rate
        Assert.AreEqual(0f, lr[100]);
    }

    [TestMethod]
    public void Stories260KFixture_MeanNllIsTheMeanOfTokenNll_AndGreedyIdsMatchTheJson()
    {
        var file = SafetensorsFile.Open(Path.Combine(Root, "stories260k", "stories260k.safetensors"));
        var tokenNll = file.ReadFloats("nll.token_nll");
        Assert.AreEqual(44, tokenNll.Length);
        Assert.AreEqual(tokenNll.Average(x => (double)x), file.ReadFloats("nll.mean").Single(), 1e-6);
        Assert.AreEqual(0.324, file.ReadFloats("nll.mean").Single(), 5e-4); // models README: 0.324 nats/token

        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Root, "stories260k", "stories260k.json")));
        var jsonIds = doc.RootElement.GetProperty("greedy").GetProperty("generated_ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        CollectionAssert.AreEqual(jsonIds, file.ReadInt64s("greedy.generated_ids"));
        Assert.AreEqual(200, jsonIds.Length);
        Assert.AreEqual(512, file.Tensors["prompt0.logits"].Shape[^1]);
    }

    [TestMethod]
    public void ModelFolders_ConfigsNameTheirArchitecture_AndBertTorchBinHoldsOneStoragePerTensor()
    {
        foreach (var arch in Architectures)
        {
            using var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Root, "models", arch, "config.json")));
            var modelType = config.RootElement.GetProperty("model_type").GetString();
            Assert.AreEqual(arch == "llama_gqa" ? "llama" : arch, modelType, $"{arch}: model_type");
            Assert.AreEqual(1, config.RootElement.GetProperty("architectures").GetArrayLength(), $"{arch}: architectures");
        }

        // torch.save writes a zip: <name>/data.pkl plus one <name>/data/<key> entry per storage. The bin holds the
        // same tensors as model.safetensors plus the int64 position_ids buffer, each with its own storage.
        var bert = SafetensorsFile.Open(Path.Combine(Root, "models", "bert", "model.safetensors"));
        using var zip = ZipFile.OpenRead(Path.Combine(Root, "models", "bert", "pytorch_model.bin"));
        Assert.AreEqual(1, zip.Entries.Count(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal)));
        Assert.AreEqual(bert.Tensors.Count + 1, zip.Entries.Count(e => e.FullName.Contains("/data/", StringComparison.Ordinal)));
    }

    private static long ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" => 1,
        _ => throw new InvalidDataException($"unknown safetensors dtype '{dtype}'"),
    };

    private static string TorchDTypeName(string dtype) => dtype switch
    {
        "F32" => "float32",
        "F64" => "float64",
        "I64" => "int64",
        _ => throw new InvalidDataException($"no torch name mapped for '{dtype}'"),
    };

    private sealed record TensorEntry(string DType, long[] Shape, long Begin, long End)
    {
        public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    }

    /// <summary>A header-only safetensors view: 8-byte LE header length, JSON header, then the data area.</summary>
    private sealed class SafetensorsFile
    {
        private SafetensorsFile(string path, long dataStart, Dictionary<string, TensorEntry> tensors, Dictionary<string, string> metadata)
        {
            Path = path;
            DataStart = dataStart;
            Tensors = tensors;
            Metadata = metadata;
        }

        public string Path { get; }

        public long DataStart { get; }

        public Dictionary<string, TensorEntry> Tensors { get; }

        public Dictionary<string, string> Metadata { get; }

        public static SafetensorsFile Open(string path)
        {
            using var stream = File.OpenRead(path);
            Span<byte> lengthBytes = stackalloc byte[8];
            stream.ReadExactly(lengthBytes);
            var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            Assert.IsTrue(headerLength % 8 == 0, $"{path}: header length {headerLength} is not a multiple of 8");
            Assert.IsTrue(8 + (long)headerLength <= stream.Length, $"{path}: header runs past the end of the file");
            var header = new byte[headerLength];
            stream.ReadExactly(header);

            var tensors = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            using var doc = JsonDocument.Parse(header);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    foreach (var m in property.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString()!;
                    continue;
                }

                var offsets = property.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                Assert.AreEqual(2, offsets.Length, $"{path}: tensor '{property.Name}' data_offsets");
                tensors[property.Name] = new TensorEntry(
                    property.Value.GetProperty("dtype").GetString()!,
                    property.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                    offsets[0],
                    offsets[1]);
            }

            return new SafetensorsFile(path, 8 + (long)headerLength, tensors, metadata);
        }

        public float[] ReadFloats(string name) => MemoryMarshal.Cast<byte, float>(ReadBytes(name, "F32")).ToArray();

        public long[] ReadInt64s(string name) => MemoryMarshal.Cast<byte, long>(ReadBytes(name, "I64")).ToArray();

        private byte[] ReadBytes(string name, string dtype)
        {
            Assert.IsTrue(BitConverter.IsLittleEndian, "fixtures are little-endian");
            Assert.IsTrue(Tensors.TryGetValue(name, out var t), $"{Path}: no tensor '{name}'");
            Assert.AreEqual(dtype, t.DType, $"{Path}: tensor '{name}' dtype");
            using var stream = File.OpenRead(Path);
            stream.Position = DataStart + t.Begin;
            var bytes = new byte[t.End - t.Begin];
            stream.ReadExactly(bytes);
            return bytes;
        }
    }
}
