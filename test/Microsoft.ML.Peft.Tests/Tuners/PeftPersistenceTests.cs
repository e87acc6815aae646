using System.Text.Json;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tuners;
using static Microsoft.ML.Peft.Tests.Lora.LoraFixtures;

namespace Microsoft.ML.Peft.Tests.Tuners;

[TestClass]
public sealed class PeftPersistenceTests
{
    private static string TempFolder()
    {
        string dir = Path.Combine(Path.GetTempPath(), "peft-lora-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static Tensor Run(Module model, Tensor x)
    {
        using (Autograd.NoGrad()) return ((TinyModel)model).Forward(x);
    }

    /// <summary>An adapter with every kind of saved tensor: LoRA A/B (patterns), a trained bias, a trained head copy.</summary>
    private static PeftModel TrainedAdapter(TinyModel model, string name = "default", PeftModel? existing = null)
    {
        var config = new LoraConfig
        {
            TargetModules = new[] { "q_proj", "v_proj", "fc1" },
            RankPattern = { ["fc1"] = 2 },
            AlphaPattern = { ["layers.1.attn.v_proj"] = 16 },
            Dropout = 0.1,
            Bias = LoraBias.LoraOnly,
            ModulesToSave = ["classifier"],
            InitLoraWeights = LoraInit.Random,
            BaseModelNameOrPath = "tiny-model",
        };
        PeftModel peft;
        if (existing is null)
        {
            peft = PeftModel.Inject(model, config, name, new Generator(21));
        }
        else
        {
            existing.AddAdapter(name, config);
            existing.SetAdapter(name);
            peft = existing;
        }
        using (Autograd.NoGrad())
        {
            // Stand-ins for training: move the head copy and one trained bias away from the base values.
            model.GetParameter("classifier.weight").Add_(Tensor.Full(0.25f, 3, 8));
            model.GetParameter("layers.0.attn.q_proj.base_layer.bias").Add_(Tensor.Full(-0.5f, 8));
        }
        return peft;
    }

    [TestMethod]
    public void SaveThenLoad_ReproducesTheAdaptedModelBitForBit_InPeftsKeyLayout()
    {
        var model = new TinyModel(new Generator(20));
        var peft = TrainedAdapter(model);
        model.Eval();
        var x = Input();
        var expected = Run(model, x);
        string dir = TempFolder();
        peft.SavePretrained(dir);

        using (var file = SafeTensorsFile.Open(Path.Combine(dir, PeftModel.WeightsFileName)))
        {
            Assert.AreEqual("pt", file.Metadata["format"]);
            var keys = new List<string>();
            foreach (var layer in new[] { "layers.0.attn.q_proj", "layers.0.attn.v_proj", "layers.0.mlp.fc1", "layers.1.attn.q_proj", "layers.1.attn.v_proj", "layers.1.mlp.fc1" })
            {
                keys.Add($"base_model.model.{layer}.lora_A.weight");
                keys.Add($"base_model.model.{layer}.lora_B.weight");
            }
            keys.AddRange(["base_model.model.layers.0.attn.q_proj.base_layer.bias", "base_model.model.layers.0.mlp.fc1.base_layer.bias",
                "base_model.model.layers.1.attn.q_proj.base_layer.bias", "base_model.model.layers.1.mlp.fc1.base_layer.bias",
                "base_model.model.classifier.weight", "base_model.model.classifier.bias"]);
            CollectionAssert.AreEquivalent(keys, file.Names.ToList());
            CollectionAssert.AreEqual(new[] { 2, 8 }, file.GetTensor("base_model.model.layers.0.mlp.fc1.lora_A.weight").Shape.ToArray());
            CollectionAssert.AreEqual(new[] { 12, 2 }, file.GetTensor("base_model.model.layers.0.mlp.fc1.lora_B.weight").Shape.ToArray());
        }
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, PeftConfig.ConfigFileName))))
        {
            Assert.IsTrue(json.RootElement.GetProperty("inference_mode").GetBoolean(), "saved configs say inference_mode = true");
            Assert.AreEqual("tiny-model", json.RootElement.GetProperty("base_model_name_or_path").GetString());
            Assert.AreEqual(2, json.RootElement.GetProperty("rank_pattern").GetProperty("fc1").GetInt32());
        }
        Assert.IsFalse(Directory.EnumerateFiles(dir, "*.tmp", SearchOption.AllDirectories).Any(), "atomic writes leave no temporary files");

        var fresh = new TinyModel(new Generator(20));
        var loaded = PeftModel.FromPretrained(fresh, dir);
        fresh.Eval();
        AssertBitIdentical(expected, Run(fresh, x), "reloaded adapter");
        Assert.IsTrue(loaded.ActiveConfig.InferenceMode);
        Assert.IsFalse(loaded.TrainableParameters().Any(), "loaded for inference: frozen");

        var trainable = PeftModel.FromPretrained(new TinyModel(new Generator(20)), dir, isTrainable: true);
        Assert.AreEqual(12 + 4 + 2, trainable.TrainableParameters().Count(), "A and B of 6 layers, 4 biases, the head's 2 tensors");
    }

    [TestMethod]
    public void SeveralAdapters_SaveIntoSubfolders_AndLoadBack()
    {
        var model = new TinyModel(new Generator(22));
        var peft = TrainedAdapter(model);
        TrainedAdapter(model, "other", peft);
        model.Eval();
        var x = Input();
        peft.SetAdapter("default");
        var outDefault = Run(model, x);
        peft.SetAdapter("other");
        var outOther = Run(model, x);
        Assert.IsTrue(MaxAbsDiff(outDefault, outOther) > 1e-4);

        string dir = TempFolder();
        peft.SavePretrained(dir);
        Assert.IsTrue(File.Exists(Path.Combine(dir, PeftModel.WeightsFileName)));
        Assert.IsTrue(File.Exists(Path.Combine(dir, "other", PeftModel.WeightsFileName)));
        Assert.IsTrue(File.Exists(Path.Combine(dir, "other", PeftConfig.ConfigFileName)));

        var fresh = new TinyModel(new Generator(22));
        var loaded = PeftModel.FromPretrained(fresh, dir);
        loaded.LoadAdapter(Path.Combine(dir, "other"), "other");
        fresh.Eval();
        Assert.AreEqual("default", loaded.ActiveAdapter, "load_adapter does not activate");
        AssertBitIdentical(outDefault, Run(fresh, x), "default");
        loaded.SetAdapter("other");
        // The trained bias is a base parameter shared by both adapters (as in PEFT): loading "other" wrote its value,
        // which equals what both adapters trained here.
        AssertBitIdentical(outOther, Run(fresh, x), "other");
    }

    [TestMethod]
    public void AnAdapterWrittenInPeftsLayout_LoadsAndReproducesPyTorch()
    {
        var state = Load("peft_model.safetensors");
        var model = TinyModel.FromState(state);
        var peft = PeftModel.FromPretrained(model, Path.Combine(Folder, "peft_adapter"));
        model.Eval();
        var config = (LoraConfig)peft.ActiveConfig;
        Assert.AreEqual(0.05, config.Dropout);
        Assert.AreEqual(2, ((LoraLinear)model.GetModule("layers.1.mlp.fc1")).Rank("default"));
        Assert.AreEqual(4f, ((LoraLinear)model.GetModule("layers.1.attn.v_proj")).Scaling("default"));
        AssertClose(state["expected.adapted"], Run(model, state["input"]), 1e-5, 1e-5, "adapted logits vs PyTorch");
        using (peft.DisableAdapters()) AssertClose(state["expected.base"], Run(model, state["input"]), 1e-5, 1e-5, "base logits vs PyTorch");
    }

    [TestMethod]
    public void Loading_ChecksKeysAndShapesFirst_NamingThem_AndRestoresTheModel()
    {
        string dir = TempFolder();
        TrainedAdapter(new TinyModel(new Generator(23))).SavePretrained(dir);

        // A config whose rank disagrees with the weights.
        string configPath = Path.Combine(dir, PeftConfig.ConfigFileName);
        string original = File.ReadAllText(configPath);
        File.WriteAllText(configPath, original.Replace("\"r\": 8", "\"r\": 4", StringComparison.Ordinal));
        var model = new TinyModel(new Generator(23));
        var e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.FromPretrained(model, dir));
        StringAssert.Contains(e.Message, "'base_model.model.layers.0.attn.q_proj.lora_A.weight' has shape [8, 8] in the file but [4, 8] in the model");
        StringAssert.Contains(e.Message, PeftModel.WeightsFileName);
        Assert.IsFalse(model.NamedModules().Any(m => m.Module is LoraLinear), "the failed load put the base layers back");
        Assert.IsTrue(model.NamedParameters().All(p => !p.Name.Contains("base_layer", StringComparison.Ordinal)));
        Assert.IsTrue(model.Parameters().All(p => p.RequiresGrad), "and its trainable flags");
        File.WriteAllText(configPath, original);

        // Weights with a key missing and a foreign key.
        string weights = Path.Combine(dir, PeftModel.WeightsFileName);
        var writer = new SafeTensorsWriter();
        using (var file = SafeTensorsFile.Open(weights))
        {
            foreach (var view in file.Tensors)
            {
                if (view.Name.EndsWith("layers.1.mlp.fc1.lora_B.weight", StringComparison.Ordinal)) continue;
                writer.Add(view.Name, view.ToFloat32Array(), [.. view.Shape]);
            }
            writer.Add("base_model.model.layers.0.attn.q_proj.lora_magnitude_vector", new float[8], 8);
            writer.Add("base_model.model.layers.0.attn.q_proj.lora_A.default.weight", new float[64], 8, 8);
        }
        File.WriteAllBytes(weights, writer.ToArray());
        var missing = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.FromPretrained(new TinyModel(new Generator(23)), dir));
        StringAssert.Contains(missing.Message, "missing key 'base_model.model.layers.1.mlp.fc1.lora_B.weight'");
        StringAssert.Contains(missing.Message, "unexpected key 'base_model.model.layers.0.attn.q_proj.lora_magnitude_vector' (a DoRA magnitude, but adapter_config.json does not set use_dora: true)");
        StringAssert.Contains(missing.Message, "unexpected key 'base_model.model.layers.0.attn.q_proj.lora_A.default.weight' (PEFT files carry no adapter name");

        File.Delete(weights);
        var absent = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.FromPretrained(new TinyModel(new Generator(23)), dir));
        StringAssert.Contains(absent.Message, "adapter_model.safetensors");
        var noConfig = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.FromPretrained(new TinyModel(new Generator(23)), Path.Combine(dir, "nowhere")));
        StringAssert.Contains(noConfig.Message, "adapter_config.json");
    }

    [TestMethod]
    public void PissaAdapter_SavesAndReloadsOntoTheOriginalBase_BitForBit()
    {
        var model = new TinyModel(new Generator(24));
        var x = Input();
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "fc1" }, Rank = 3, InitLoraWeights = LoraInit.Pissa });
        using (Autograd.NoGrad()) ((LoraLinear)model.GetModule("layers.0.mlp.fc1")).LoraB("default").Add_(Tensor.Full(0.01f, 12, 3));
        var expected = Run(model, x);
        string dir = TempFolder();
        peft.SavePretrained(dir);
        var fresh = new TinyModel(new Generator(24));
        PeftModel.FromPretrained(fresh, dir);
        AssertBitIdentical(expected, Run(fresh, x), "PiSSA recomputes the same residual base weight on load");
    }
}
