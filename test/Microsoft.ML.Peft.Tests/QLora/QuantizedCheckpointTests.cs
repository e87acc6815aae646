using System.Text;
using System.Text.Json.Nodes;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Quantization;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.QLora;

/// <summary>
/// Saving a 4-bit model with bitsandbytes-style keys and loading it back into <see cref="QuantizedLinear"/> layers
/// without re-quantizing: bit-identical codes, scales and logits; corrupted or mismatched files fail naming the tensor.
/// </summary>
[TestClass]
public sealed class QuantizedCheckpointTests
{
    private const string QProj = "model.layers.0.self_attn.q_proj.weight";

    private static readonly int[] Ids = [1, 403, 261, 300, 17, 88, 410, 29, 2, 7];

    [TestMethod]
    [DataRow(FourBitType.NF4, 64, true)]
    [DataRow(FourBitType.FP4, 64, false)]
    [DataRow(FourBitType.Int4, 128, true)]
    [DataRow(FourBitType.NF4, 32, false)]
    public void Stories260K_SaveAndLoad_IsBitIdentical(FourBitType type, int blockSize, bool doubleQuant)
    {
        using var dir = new TempDir();
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
        var options = new QuantizationOptions { Type = type, BlockSize = blockSize, DoubleQuant = doubleQuant };
        var quantized = QuantizedModel.QuantizeLinearLayers(model, options);
        Assert.AreEqual(35, quantized.Count); // 5 layers × 7 linear layers; the head is tied to the embedding
        var written = QuantizedCheckpoint.SavePretrained(model, dir.Path);
        CollectionAssert.AreEqual(quantized.ToArray(), written.ToArray());

        var loaded = (CausalLanguageModel)QuantizedCheckpoint.LoadPretrained(dir.Path);
        foreach (string name in quantized)
        {
            var a = ((QuantizedLinear)model.GetModule(name)).Weight;
            var b = Assert.IsInstanceOfType<QuantizedLinear>(loaded.GetModule(name)).Weight;
            Assert.AreEqual(type, b.QuantType, name);
            Assert.AreEqual(blockSize, b.BlockSize, name);
            Assert.AreEqual(doubleQuant, b.IsDoubleQuantized, name);
            CollectionAssert.AreEqual(a.Shape, b.Shape, name);
            Assert.IsTrue(a.PackedCodes.SequenceEqual(b.PackedCodes), name);
            CollectionAssert.AreEqual(a.Dequantize(), b.Dequantize(), name);
        }
        CollectionAssert.AreEqual(Logits(model), Logits(loaded));
        Assert.IsTrue(loaded.NamedParameters().All(p => p.Name.Contains("norm", StringComparison.Ordinal) || p.Name.Contains("embed", StringComparison.Ordinal)));
    }

    [TestMethod]
    public void SavedFile_HasBitsAndBytesKeys_AndConfigQuantizationSection()
    {
        using var dir = new TempDir();
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
        QuantizedModel.QuantizeLinearLayers(model);
        QuantizedCheckpoint.SavePretrained(model, dir.Path);

        using (var file = SafeTensorsFile.Open(Path.Combine(dir.Path, QuantizedCheckpoint.WeightsFileName)))
        {
            var weight = file.GetTensor(QProj);
            Assert.AreEqual(CheckpointDType.U8, weight.DType);
            CollectionAssert.AreEqual(new[] { 64 * 64 / 2, 1 }, weight.Shape.ToArray());
            Assert.AreEqual(CheckpointDType.U8, file.GetTensor(QProj + ".absmax").DType); // double-quantized scales
            CollectionAssert.AreEqual(new[] { 64 }, file.GetTensor(QProj + ".absmax").Shape.ToArray());
            CollectionAssert.AreEqual(new[] { 16 }, file.GetTensor(QProj + ".quant_map").Shape.ToArray());
            CollectionAssert.AreEqual(new[] { 1 }, file.GetTensor(QProj + ".nested_absmax").Shape.ToArray());
            CollectionAssert.AreEqual(new[] { 256 }, file.GetTensor(QProj + ".nested_quant_map").Shape.ToArray());
            string state = Encoding.UTF8.GetString(file.GetTensor(QProj + ".quant_state.bitsandbytes__nf4").Bytes);
            StringAssert.StartsWith(state, "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [64, 64], \"nested_blocksize\": 256, ");
            Assert.AreEqual(CheckpointDType.F32, file.GetTensor("model.norm.weight").DType);
            Assert.IsFalse(file.Contains("lm_head.weight"));
        }
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "config.json")))!;
        Assert.AreEqual("bitsandbytes", (string?)config["quantization_config"]!["quant_method"]);
        Assert.AreEqual("nf4", (string?)config["quantization_config"]!["bnb_4bit_quant_type"]);
        Assert.IsTrue((bool)config["quantization_config"]!["bnb_4bit_use_double_quant"]!);
        Assert.AreEqual(64, (int)config["hidden_size"]!);
    }

    [TestMethod]
    public void ModelWithLoraWrappers_SavesTheBaseUnderItsOwnNames()
    {
        using var dir = new TempDir();
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
        QuantizedModel.QuantizeLinearLayers(model);
        model.SetRequiresGrad(false);
        var wrapped = LoraInjector.Inject(model, new LoraConfig { Rank = 4, TargetModules = new[] { "q_proj", "v_proj" } }, "default", new Generator(3));
        Assert.AreEqual(10, wrapped.Count);
        Assert.AreEqual(35, QuantizedCheckpoint.SavePretrained(model, dir.Path).Count);

        using (var file = SafeTensorsFile.Open(Path.Combine(dir.Path, QuantizedCheckpoint.WeightsFileName)))
        {
            Assert.IsFalse(file.Names.Any(n => n.Contains("base_layer", StringComparison.Ordinal) || n.Contains("lora_", StringComparison.Ordinal)),
                string.Join(", ", file.Names.Where(n => n.Contains("base_layer", StringComparison.Ordinal) || n.Contains("lora_", StringComparison.Ordinal))));
            Assert.IsTrue(file.Contains(QProj + ".quant_state.bitsandbytes__nf4"));
        }
        // LoRA B starts at zero, so the wrapped model computes exactly its base.
        var loaded = QuantizedCheckpoint.LoadPretrained(dir.Path);
        Assert.IsInstanceOfType<QuantizedLinear>(loaded.GetModule("model.layers.0.self_attn.q_proj"));
        CollectionAssert.AreEqual(Logits(model), Logits(loaded));
    }

    [TestMethod]
    public void OddDimensions_AndBFloat16Embeddings_RoundTrip()
    {
        // hidden 63 with an explicit head_dim: q_proj is [64, 63], gate_proj [171, 63] = 10,773 values, an odd count
        // whose last byte carries a padding nibble; blocks of 64 straddle rows.
        using var source = new TempDir();
        using var saved = new TempDir();
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Stories260K, "config.json")))!.AsObject();
        config["hidden_size"] = 63;
        config["intermediate_size"] = 171;
        config["num_hidden_layers"] = 2;
        config["vocab_size"] = 40;
        config["tie_word_embeddings"] = false;
        File.WriteAllText(Path.Combine(source.Path, "config.json"), config.ToJsonString());
        var model = PretrainedModel.Create(ModelConfig.Load(source.Path), ModelTask.CausalLM, seed: 5);
        QuantizedModel.QuantizeLinearLayers(model, new QuantizationOptions { EmbeddingsToBFloat16 = true });
        Assert.AreEqual(10773L, ((QuantizedLinear)model.GetModule("model.layers.1.mlp.gate_proj")).Weight.ElementCount);
        QuantizedCheckpoint.SavePretrained(model, saved.Path);

        var loaded = QuantizedCheckpoint.LoadPretrained(saved.Path);
        Assert.IsInstanceOfType<QuantizedLinear>(loaded.GetModule("model.layers.1.mlp.gate_proj"));
        Assert.AreEqual(DType.BFloat16, loaded.GetParameter("model.embed_tokens.weight").DType);
        Assert.IsInstanceOfType<Linear>(loaded.GetModule("lm_head"));
        int[] ids = [1, 39, 7, 0, 12];
        CollectionAssert.AreEqual(Logits(model, ids), Logits(loaded, ids));
    }

    [TestMethod]
    public void ShapeDisagreeingWithConfig_NamesTheTensor()
    {
        var e = LoadCorrupted(QProj + ".quant_state.bitsandbytes__nf4", json => json.Replace("\"shape\": [64, 64]", "\"shape\": [32, 128]", StringComparison.Ordinal));
        Assert.AreEqual(QProj, e.TensorName);
        StringAssert.Contains(e.Message, "[32, 128]");
        StringAssert.Contains(e.Message, "expects [64, 64]");
    }

    [TestMethod]
    public void CorruptedQuantState_NamesTheKey()
    {
        var e = LoadCorrupted(QProj + ".quant_state.bitsandbytes__nf4", json => json[..20]);
        Assert.AreEqual(QProj, e.TensorName);
        StringAssert.Contains(e.Message, QProj + ".quant_state.bitsandbytes__nf4");
        StringAssert.Contains(e.Message, "not valid JSON");
    }

    [TestMethod]
    public void BlockSizeThatIsNotAllowed_NamesTheTensor()
    {
        var e = LoadCorrupted(QProj + ".quant_state.bitsandbytes__nf4", json => json.Replace("\"blocksize\": 64", "\"blocksize\": 100", StringComparison.Ordinal));
        Assert.AreEqual(QProj, e.TensorName);
        StringAssert.Contains(e.Message, "100");
    }

    [TestMethod]
    public void MissingAbsmax_NamesTheArray()
    {
        var e = LoadCorrupted(QProj + ".absmax", remove: true);
        StringAssert.Contains(e.Message, QProj + ".absmax: missing");
    }

    [TestMethod]
    public void TruncatedNestedAbsmax_And_AlteredQuantMap_NameTheArray()
    {
        var e = LoadCorrupted(QProj + ".nested_absmax", replace: ("F32", [2], new byte[8]));
        StringAssert.Contains(e.Message, QProj + ".nested_absmax: has 2 elements");
        var map = new byte[64];
        Buffer.BlockCopy(new float[] { 1f, 2f }, 0, map, 0, 8);
        e = LoadCorrupted(QProj + ".quant_map", replace: ("F32", [16], map));
        StringAssert.Contains(e.Message, QProj + ".quant_map[0]");
    }

    [TestMethod]
    public void QuantStateForALayerTheConfigLacks_NamesTheTensor()
    {
        var e = LoadCorrupted(QProj + ".quant_state.bitsandbytes__nf4", rename: "model.layers.9.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4");
        Assert.AreEqual("model.layers.9.self_attn.q_proj.weight", e.TensorName);
        StringAssert.Contains(e.Message, "no linear layer 'model.layers.9.self_attn.q_proj'");
    }

    /// <summary>Saves quantized stories260K, rewrites one entry of the weights file, and returns the load error.</summary>
    private static ModelLoadException LoadCorrupted(string key, Func<string, string>? editJson = null, bool remove = false,
        (string DType, int[] Shape, byte[] Data)? replace = null, string? rename = null)
    {
        using var dir = new TempDir();
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
        QuantizedModel.QuantizeLinearLayers(model);
        QuantizedCheckpoint.SavePretrained(model, dir.Path);
        string path = Path.Combine(dir.Path, QuantizedCheckpoint.WeightsFileName);
        var writer = new SafeTensorsWriter();
        byte[] bytes;
        using (var file = SafeTensorsFile.Open(path))
        {
            Assert.IsTrue(file.Contains(key), key);
            foreach (var view in file.Tensors)
            {
                if (view.Name != key) writer.Add(view.Name, view.DType, view.Shape.AsSpan(), view.Bytes.ToArray());
                else if (editJson is not null)
                {
                    byte[] edited = Encoding.UTF8.GetBytes(editJson(Encoding.UTF8.GetString(view.Bytes)));
                    writer.Add(key, CheckpointDType.U8, [edited.Length], edited);
                }
                else if (replace is { } r)
                {
                    Assert.IsTrue(CheckpointDTypes.TryParseSafeTensorsName(r.DType, out var dtype));
                    writer.Add(key, dtype, r.Shape, r.Data);
                }
                else if (rename is not null) writer.Add(rename, view.DType, view.Shape.AsSpan(), view.Bytes.ToArray());
                else Assert.IsTrue(remove);
            }
            bytes = writer.ToArray();
        }
        File.WriteAllBytes(path, bytes);
        return Assert.ThrowsExactly<ModelLoadException>(() => QuantizedCheckpoint.LoadPretrained(dir.Path));
    }

    private static float[] Logits(PretrainedModel model, int[]? ids = null)
    {
        ids ??= Ids;
        using (Autograd.NoGrad())
        using (TensorScope.Begin())
            return ((CausalLanguageModel)model).Forward(Tensor.FromInt32(ids, 1, ids.Length)).ToArray();
    }

    private sealed class TempDir : IDisposable
    {
        public TempDir()
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "qckpt-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(Path);
        }

        public string Path { get; }

        public void Dispose()
        {
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
