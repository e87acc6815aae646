using System.Security.Cryptography;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Models;

/// <summary>
/// <see cref="PretrainedModel.Load"/> on broken and unusual checkpoints: errors name the file, tensor and shapes before
/// anything is allocated; bare-backbone, pytorch_model.bin, sharded, bfloat16 and TF-named checkpoints load to the
/// reference numbers; missing heads are initialised from the seed.
/// </summary>
[TestClass]
public sealed class LoadingTests
{
    [TestMethod]
    public void UnknownModelType_NamesTheConfigFileAndField()
    {
        using var copies = new CheckpointCopies();
        string folder = copies.Copy("bert", "t5", c => c["model_type"] = "t5");
        var e = Assert.Throws<ModelConfigException>(() => PretrainedModel.Load(folder));
        StringAssert.Contains(e.Message, Path.Combine(folder, "config.json"));
        StringAssert.Contains(e.Message, "'model_type'");
        StringAssert.Contains(e.Message, "'t5' is not supported");
    }

    [TestMethod]
    public void MissingTensor_NamesTheFileAndTensor()
    {
        using var copies = new CheckpointCopies();
        const string dropped = "bert.encoder.layer.1.output.dense.weight";
        string folder = copies.Copy("bert", "missing", rewrite: (v, _) => v.Name == dropped);
        var e = Assert.Throws<ModelLoadException>(() => PretrainedModel.Load(folder));
        Assert.AreEqual(dropped, e.TensorName);
        StringAssert.Contains(e.Message, Path.Combine(folder, "model.safetensors"));
        StringAssert.Contains(e.Message, $"missing tensor '{dropped}' (expected shape [32, 37])");
    }

    [TestMethod]
    public void ShapeDisagreeingWithConfig_NamesTheTensorAndBothShapes()
    {
        using var copies = new CheckpointCopies();
        string folder = copies.Copy("bert", "wider", c => c["intermediate_size"] = 38);
        var e = Assert.Throws<ModelLoadException>(() => PretrainedModel.Load(folder));
        StringAssert.Contains(e.Message, Path.Combine(folder, "model.safetensors"));
        StringAssert.Contains(e.Message, Path.Combine(folder, "config.json"));
        StringAssert.Contains(e.Message, "tensor 'bert.encoder.layer.0.intermediate.dense.weight' has shape [37, 32] in the checkpoint but the model built from config.json expects [38, 32]");
        StringAssert.Contains(e.Message, "6 problems", "per layer: intermediate.dense weight and bias, output.dense weight (its bias is hidden-sized)");
    }

    [TestMethod]
    public void HeadForAnotherLabelCount_FailsByName_OrIsReinitialisedOnRequest()
    {
        string folder = TestPaths.Fixture("reference", "models", "bert");
        var e = Assert.Throws<ModelLoadException>(() => PretrainedModel.LoadForSequenceClassification(folder, numLabels: 5));
        StringAssert.Contains(e.Message, "tensor 'classifier.weight' has shape [3, 32] in the checkpoint but the model built from config.json expects [5, 32]");

        var model = PretrainedModel.LoadForSequenceClassification(folder, 5, new ModelLoadOptions { IgnoreMismatchedSizes = true });
        Assert.AreEqual(5, model.NumLabels);
        CollectionAssert.AreEqual(new[] { "classifier.weight", "classifier.bias" }, model.LoadReport!.InitializedParameters.ToArray());
        Assert.AreEqual(0, model.LoadReport.UnexpectedKeys.Count);
    }

    [TestMethod]
    public void IntegerTensor_IsRejectedByName()
    {
        using var copies = new CheckpointCopies();
        string folder = copies.Copy("qwen2", "int", rewrite: (v, w) =>
        {
            if (v.Name != "model.norm.weight") return false;
            w.Add(v.Name, CheckpointDType.I32, [32], new byte[32 * 4]);
            return true;
        });
        var e = Assert.Throws<ModelLoadException>(() => PretrainedModel.Load(folder));
        StringAssert.Contains(e.Message, "tensor 'model.norm.weight' is I32, not a float type");
    }

    [TestMethod]
    public void PyTorchBin_LoadsToTheSameNumbersAsSafetensors()
    {
        using var copies = new CheckpointCopies();
        string folder = Path.Combine(copies.Root, "bin");
        Directory.CreateDirectory(folder);
        File.Copy(TestPaths.Fixture("reference", "models", "bert", "config.json"), Path.Combine(folder, "config.json"));
        File.Copy(TestPaths.Fixture("reference", "models", "bert", "pytorch_model.bin"), Path.Combine(folder, "pytorch_model.bin"));
        var fromBin = (SequenceClassificationModel)PretrainedModel.Load(folder);
        var fromSafetensors = (SequenceClassificationModel)PretrainedModel.Load(TestPaths.Fixture("reference", "models", "bert"));
        StringAssert.EndsWith(fromBin.LoadReport!.WeightsPath, "pytorch_model.bin");
        CollectionAssert.AreEqual(new[] { "bert.embeddings.position_ids" }, fromBin.LoadReport.IgnoredBuffers.ToArray(), "the int64 buffer older transformers saved");
        Assert.AreEqual(0, fromBin.LoadReport.UnexpectedKeys.Count);

        using var fx = ReferenceFixture.Open("models/bert/expected.safetensors");
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var ids = fx.Int("right_padding.input_ids");
        var mask = fx.Int("right_padding.attention_mask");
        var types = fx.Int("right_padding.token_type_ids");
        var a = fromBin.Forward(ids, mask, types);
        CollectionAssert.AreEqual(fromSafetensors.Forward(ids, mask, types).ToArray(), a.ToArray(), "bit-identical weights, bit-identical logits");
        Close.Assert(fx.Float("right_padding.sequence_classification.logits"), a, "logits from pytorch_model.bin");
    }

    [TestMethod]
    public void BareBackboneCheckpoint_GetsThePrefix_AndTheMissingHeadIsInitialisedFromTheSeed()
    {
        using var copies = new CheckpointCopies();
        string folder = copies.Copy("bert", "backbone", c => c["architectures"] = new System.Text.Json.Nodes.JsonArray("BertModel"), (v, w) =>
        {
            if (v.Name.StartsWith("classifier.", StringComparison.Ordinal)) return true;
            w.Add(v, v.Name["bert.".Length..]);
            return true;
        });
        var options = new ModelLoadOptions { Task = ModelTask.SequenceClassification, NumLabels = 4, Seed = 11 };
        var logs = new List<string>();
        var model = (SequenceClassificationModel)PretrainedModel.Load(folder, options with { Log = logs.Add });
        var report = model.LoadReport!;
        Assert.AreEqual("added 'bert.' to bare-backbone checkpoint keys", report.KeyPrefix);
        CollectionAssert.AreEqual(new[] { "classifier.weight", "classifier.bias" }, report.InitializedParameters.ToArray());
        Assert.AreEqual(1, logs.Count(l => l.Contains("classifier.weight", StringComparison.Ordinal)), "initialised heads are logged");
        Assert.AreEqual(4, model.NumLabels);

        var weight = model.GetParameter("classifier.weight").ToArray();
        Assert.AreEqual(4 * 32, weight.Length);
        Assert.IsTrue(model.GetParameter("classifier.bias").ToArray().All(b => b == 0f), "biases start at zero");
        double mean = weight.Average(), std = Math.Sqrt(weight.Select(x => (x - mean) * (x - mean)).Average());
        Assert.AreEqual(0.2, std, 0.04, "std = initializer_range (0.2 in this config) — 128 draws");
        Assert.IsTrue(model.GetParameter("classifier.weight").RequiresGrad);

        var again = PretrainedModel.Load(folder, options);
        CollectionAssert.AreEqual(weight, again.GetParameter("classifier.weight").ToArray(), "same seed, same head");
        var other = PretrainedModel.Load(folder, options with { Seed = 12 });
        CollectionAssert.AreNotEqual(weight, other.GetParameter("classifier.weight").ToArray(), "another seed, another head");

        // The backbone is the reference one.
        using var fx = ReferenceFixture.Open("models/bert/expected.safetensors");
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var last = ((EncoderModel)model.Backbone).Forward(fx.Int("right_padding.input_ids"), fx.Int("right_padding.attention_mask"), fx.Int("right_padding.token_type_ids"));
        Close.Assert(fx.Float("right_padding.last_hidden_state"), last, "backbone of a prefix-less checkpoint");
    }

    [TestMethod]
    public void EncoderCheckpointWithoutTaskHead_AsksForTheTask()
    {
        using var copies = new CheckpointCopies();
        string folder = copies.Copy("bert", "mlm", c => c["architectures"] = new System.Text.Json.Nodes.JsonArray("BertForMaskedLM"));
        var e = Assert.Throws<ModelConfigException>(() => PretrainedModel.Load(folder));
        StringAssert.Contains(e.Message, "ModelLoadOptions.Task");
        Assert.IsInstanceOfType<SequenceClassificationModel>(PretrainedModel.LoadForSequenceClassification(folder));
    }

    [TestMethod]
    public void BFloat16Checkpoint_KeepsMatricesZeroCopyAndFrozen_WithTheNumbersOfItsWidenedValues()
    {
        using var copies = new CheckpointCopies();
        // The same weights twice: as BF16, and as F32 holding exactly the BF16 values (the independent reference).
        string bf16 = copies.Copy("llama_gqa", "bf16", c => c["torch_dtype"] = "bfloat16", (v, w) => Rewrite(v, w, asBFloat16: true));
        string widened = copies.Copy("llama_gqa", "widened", rewrite: (v, w) => Rewrite(v, w, asBFloat16: false));
        var model = PretrainedModel.LoadForCausalLM(bf16);
        var reference = PretrainedModel.LoadForCausalLM(widened);

        var q = model.GetParameter("model.layers.0.self_attn.q_proj.weight");
        Assert.AreEqual(DType.BFloat16, q.DType);
        Assert.IsFalse(q.RequiresGrad, "bfloat16 storage is frozen");
        Assert.AreEqual(DType.Float32, model.GetParameter("model.norm.weight").DType, "vectors are widened to float32");
        Assert.IsTrue(model.GetParameter("model.norm.weight").RequiresGrad);
        Assert.AreEqual(DType.BFloat16, model.GetParameter("lm_head.weight").DType, "the language-model head is pretrained, not a new task head");
        Assert.AreEqual(7 * 2 + 1 + 1, model.LoadReport!.ZeroCopyParameters, "7 matrices per layer + embed_tokens + lm_head");

        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        int[] ids = [3, 14, 15, 92, 6, 5, 35];
        var input = Tensor.FromInt32(ids, 1, ids.Length);
        var expected = reference.Forward(input);
        Close.Assert(expected, model.Forward(input), "bf16-storage model vs float32 model of the same values", atol: 1e-5, rtol: 1e-5);

        var converted = PretrainedModel.LoadForCausalLM(bf16, new ModelLoadOptions { ConvertToFloat32 = true });
        Assert.IsTrue(converted.NamedParameters().All(p => p.Parameter.DType == DType.Float32 && p.Parameter.RequiresGrad));
        Close.Assert(expected, converted.Forward(input), "bf16 checkpoint widened at load", atol: 1e-5, rtol: 1e-5);
    }

    [TestMethod]
    [DataRow("bert", "")]
    [DataRow("roberta", "")]
    [DataRow("distilbert", "")]
    [DataRow("gpt2", "sequence_classification")]
    [DataRow("gpt_neox", "sequence_classification")]
    public void BFloat16Classifier_MatchesItsWidenedValues_WithAFloat32Head(string arch, string subfolder)
    {
        using var copies = new CheckpointCopies();
        string bf16 = copies.Copy(arch, "bf16", rewrite: (v, w) => Rewrite(v, w, asBFloat16: true), fixtureSubfolder: subfolder);
        string widened = copies.Copy(arch, "widened", rewrite: (v, w) => Rewrite(v, w, asBFloat16: false), fixtureSubfolder: subfolder);
        var model = PretrainedModel.LoadForSequenceClassification(bf16);
        var reference = PretrainedModel.LoadForSequenceClassification(widened);
        foreach (string head in model.ClassifierHeadNames)
        {
            foreach (var (name, p) in model.GetModule(head).NamedParameters())
                Assert.IsTrue(p.DType == DType.Float32 && p.RequiresGrad, $"{head}.{name} is a trainable float32 head");
        }
        Assert.IsTrue(model.NamedParameters().Any(p => p.Parameter.DType == DType.BFloat16), "the backbone matrices stay bfloat16");

        using var fx = ReferenceFixture.Open($"models/{arch}/expected.safetensors");
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var ids = fx.Int("right_padding.input_ids");
        var mask = fx.Int("right_padding.attention_mask");
        var types = fx.Has("right_padding.token_type_ids") ? fx.Int("right_padding.token_type_ids") : null;
        Close.Assert(reference.Forward(ids, mask, types), model.Forward(ids, mask, types), $"{arch} bf16 storage", atol: 1e-5, rtol: 1e-5);
    }

    [TestMethod]
    public void ShardedCheckpoint_LoadsLikeTheSingleFile()
    {
        using var copies = new CheckpointCopies();
        string folder = Path.Combine(copies.Root, "sharded");
        Directory.CreateDirectory(folder);
        string source = TestPaths.Fixture("reference", "models", "qwen2");
        File.Copy(Path.Combine(source, "config.json"), Path.Combine(folder, "config.json"));
        var map = new System.Text.Json.Nodes.JsonObject();
        using (var file = SafeTensorsFile.Open(Path.Combine(source, "model.safetensors")))
        {
            var shards = new[] { new SafeTensorsWriter(), new SafeTensorsWriter() };
            foreach (var view in file.Tensors)
            {
                int shard = view.Name.Contains("layers.1.", StringComparison.Ordinal) || view.Name.StartsWith("model.norm", StringComparison.Ordinal) ? 1 : 0;
                shards[shard].Add(view);
                map[view.Name] = $"model-0000{shard + 1}-of-00002.safetensors";
            }
            for (int i = 0; i < 2; i++) shards[i].Save(Path.Combine(folder, $"model-0000{i + 1}-of-00002.safetensors"));
        }
        var index = new System.Text.Json.Nodes.JsonObject { ["metadata"] = new System.Text.Json.Nodes.JsonObject(), ["weight_map"] = map };
        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"), index.ToJsonString());

        var sharded = PretrainedModel.LoadForCausalLM(folder);
        StringAssert.EndsWith(sharded.LoadReport!.WeightsPath, "model.safetensors.index.json");
        var single = PretrainedModel.LoadForCausalLM(source);
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var input = Tensor.FromInt32([1, 2, 3, 4, 5], 1, 5);
        CollectionAssert.AreEqual(single.Forward(input).ToArray(), sharded.Forward(input).ToArray());
    }

    [TestMethod]
    public void TensorFlowLayerNormNames_GammaAndBeta_AreRead()
    {
        using var copies = new CheckpointCopies();
        string folder = copies.Copy("distilbert", "tf", rewrite: (v, w) =>
        {
            string name = v.Name.Replace("LayerNorm.weight", "LayerNorm.gamma", StringComparison.Ordinal).Replace("LayerNorm.bias", "LayerNorm.beta", StringComparison.Ordinal);
            w.Add(v, name);
            return true;
        });
        var model = PretrainedModel.Load(folder);
        Assert.AreEqual(0, model.LoadReport!.UnexpectedKeys.Count);
        Assert.AreEqual(0, model.LoadReport.InitializedParameters.Count);
    }

    [TestMethod]
    public void ZeroCopyWeights_CanBeUpdatedInPlace_WithoutTouchingTheFile()
    {
        using var copies = new CheckpointCopies();
        string folder = copies.Copy("gpt2", "cow");
        string path = Path.Combine(folder, "model.safetensors");
        byte[] before = SHA256.HashData(File.ReadAllBytes(path));
        var model = PretrainedModel.LoadForCausalLM(folder);
        var wte = model.GetParameter("transformer.wte.weight");
        Assert.IsTrue(wte.RequiresGrad, "float32 checkpoint weights are trainable, as after from_pretrained");
        float original = wte.At(0, 0);
        using (Autograd.NoGrad()) wte.Add_(Tensor.Ones(113, 32));
        Assert.AreEqual(original + 1f, wte.At(0, 0), 1e-6, "the optimizer-style update reached the parameter");
        CollectionAssert.AreEqual(before, SHA256.HashData(File.ReadAllBytes(path)), "the checkpoint file is unchanged (private mapping)");
    }

    /// <summary>Rounds every float tensor to bfloat16, stored as BF16 or as F32 holding the rounded values.</summary>
    private static bool Rewrite(TensorView view, SafeTensorsWriter writer, bool asBFloat16)
    {
        var values = view.ToFloat32Array();
        var bits = values.Select(BFloat16.FromFloat).ToArray();
        if (asBFloat16)
        {
            var bytes = new byte[bits.Length * 2];
            Buffer.BlockCopy(bits, 0, bytes, 0, bytes.Length);
            writer.Add(view.Name, CheckpointDType.BF16, [.. view.Shape], bytes);
        }
        else
        {
            writer.Add(view.Name, bits.Select(BFloat16.ToFloat).ToArray(), [.. view.Shape]);
        }
        return true;
    }
}
