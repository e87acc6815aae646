using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Tuners;

[TestClass]
public sealed class PeftConfigJsonTests
{
    private static string FixtureText(params string[] parts) => File.ReadAllText(TestPaths.Fixture(["lora", .. parts]));

    [TestMethod]
    public void WrittenConfig_IsByteIdenticalToPythonsJsonDumps()
    {
        // lora_config_minimal.json was written by Python's json.dumps(indent=2, sort_keys=True), as PEFT writes configs.
        var config = new LoraConfig
        {
            Rank = 16,
            Alpha = 16,
            Dropout = 0.05,
            TargetModules = new[] { "q_proj", "k_proj", "v_proj", "o_proj" },
            ExcludeModules = new[] { "lm_head" },
            Bias = LoraBias.LoraOnly,
            UseRsLora = true,
            InitLoraWeights = LoraInit.PissaFast(4),
            LayersToTransform = [0, 2],
            LayersPattern = ["layers"],
            RankPattern = { [@"^model\.layers\.\d+\.mlp\..*"] = 4 },
            AlphaPattern = { ["model.layers.0.self_attn.k_proj"] = 32, ["o_proj"] = 0.5 },
            ModulesToSave = ["score"],
            TaskType = "CAUSAL_LM",
            BaseModelNameOrPath = "café/model+v2",
        };
        string expected = FixtureText("lora_config_minimal.json");
        Assert.AreEqual(expected, config.ToJson());
        Assert.AreEqual(expected, PeftConfig.FromJson(expected).ToJson(), "read → write round trip");
    }

    [TestMethod]
    public void PeftWrittenConfig_ReadsEveryField_AndRoundTripsUnchanged()
    {
        string text = FixtureText("peft_adapter", "adapter_config.json");
        var config = (LoraConfig)PeftConfig.FromJson(text, "adapter_config.json");
        Assert.AreEqual(4, config.Rank);
        Assert.AreEqual(8, config.Alpha);
        Assert.AreEqual(0.05, config.Dropout);
        CollectionAssert.AreEqual(new[] { "v_proj", "q_proj", "fc1" }, config.TargetModules!.Names!.ToArray());
        Assert.AreEqual(2, config.RankPattern["fc1"]);
        Assert.AreEqual(16, config.AlphaPattern["layers.1.attn.v_proj"]);
        CollectionAssert.AreEqual(new[] { "classifier" }, config.ModulesToSave!.ToArray());
        Assert.IsTrue(config.InferenceMode);
        Assert.AreEqual(LoraInit.Default, config.InitLoraWeights);
        Assert.AreEqual("tiny-test-model", config.BaseModelNameOrPath);
        Assert.IsTrue(config.ExtraFields.ContainsKey("trainable_token_indices"), "fields of newer PEFT releases are kept");
        Assert.AreEqual(text, config.ToJson(), "nothing is lost or reformatted");
    }

    [TestMethod]
    public void MissingFields_TakePeftsDefaults()
    {
        var config = (LoraConfig)PeftConfig.FromJson("""{"peft_type": "LORA", "target_modules": "model\\..*proj", "layers_to_transform": null}""");
        Assert.AreEqual(8, config.Rank);
        Assert.AreEqual(8, config.Alpha);
        Assert.AreEqual(0, config.Dropout);
        Assert.AreEqual(LoraBias.None, config.Bias);
        Assert.AreEqual(LoraInit.Default, config.InitLoraWeights);
        Assert.IsFalse(config.UseRsLora || config.FanInFanOut || config.InferenceMode);
        Assert.AreEqual(@"model\..*proj", config.TargetModules!.Pattern);
        Assert.IsNull(config.ModulesToSave);
        var single = (LoraConfig)PeftConfig.FromJson("""{"peft_type": "LORA", "target_modules": ["q"], "layers_to_transform": 3, "layers_pattern": "h", "init_lora_weights": false}""");
        CollectionAssert.AreEqual(new[] { 3 }, single.LayersToTransform!.ToArray());
        CollectionAssert.AreEqual(new[] { "h" }, single.LayersPattern!.ToArray());
        Assert.AreEqual(LoraInit.Random, single.InitLoraWeights);
        Assert.AreEqual(LoraInit.Gaussian, ((LoraConfig)PeftConfig.FromJson("""{"peft_type": "LORA", "init_lora_weights": "gaussian"}""")).InitLoraWeights);
        Assert.AreEqual(LoraInit.Pissa, ((LoraConfig)PeftConfig.FromJson("""{"peft_type": "LORA", "init_lora_weights": "pissa"}""")).InitLoraWeights);
    }

    [TestMethod]
    [DataRow("""{"peft_type": "LORA", "lora_bias": true}""", "'lora_bias' = true is not supported (LoRA bias on B")]
    [DataRow("""{"peft_type": "LORA", "loftq_config": {"loftq_bits": 4}}""", "'loftq_config'")]
    [DataRow("""{"peft_type": "LORA", "r": "8"}""", "'r' must be an integer")]
    [DataRow("""{"peft_type": "LORA", "r": 8.5}""", "'r' must be an integer")]
    [DataRow("""{"peft_type": "LORA", "r": 0}""", "r must be a positive integer")]
    [DataRow("""{"peft_type": "LORA", "lora_dropout": 1.5}""", "lora_dropout must be in [0, 1)")]
    [DataRow("""{"peft_type": "LORA", "bias": "some"}""", "'bias' must be \"none\", \"all\" or \"lora_only\"")]
    [DataRow("""{"peft_type": "LORA", "init_lora_weights": "loftq"}""", "init_lora_weights \"loftq\" is not supported")]
    [DataRow("""{"peft_type": "LORA", "target_modules": 5}""", "'target_modules' must be a string or a list of strings")]
    [DataRow("""{"peft_type": "LORA", "target_modules": "(unclosed"}""", "not a valid regular expression")]
    [DataRow("""{"peft_type": "LORA", "layers_pattern": "layers"}""", "layers_pattern is set but layers_to_transform is not")]
    [DataRow("""{"peft_type": "LORA", "target_modules": ".*q", "layers_to_transform": [1]}""", "cannot be used when target_modules is a regular expression")]
    [DataRow("""{"peft_type": "LORA", "task_type": "CLASSIFY"}""", "task_type 'CLASSIFY' is not one of")]
    [DataRow("""{"peft_type": "BOFT"}""", "peft_type 'BOFT' is not supported")]
    [DataRow("""{"r": 8}""", "'peft_type' is missing")]
    [DataRow("""{"peft_type": "LORA",""", "not valid JSON")]
    [DataRow("""[1, 2]""", "must be a JSON object")]
    public void BadConfigs_FailNamingTheSourceAndField(string json, string expected)
    {
        var e = Assert.ThrowsExactly<PeftConfigException>(() => PeftConfig.FromJson(json, "my/adapter_config.json"));
        StringAssert.Contains(e.Message, expected);
        StringAssert.StartsWith(e.Message, "my/adapter_config.json: ");
    }

    [TestMethod]
    public void PythonJson_EscapesAndFormatsAsPython()
    {
        var value = new Dictionary<string, object?>
        {
            ["b"] = new List<object?> { 1, 0.1, 1e-5, 1e16, -2.5, true, null },
            ["a"] = "tab\t quote\" back\\ é \u2603 \u007f <+&>",
            ["e"] = new Dictionary<string, object?>(),
            ["d"] = new List<object?>(),
        };
        // Python: json.dumps(value, indent=2, sort_keys=True)
        const string expected = "{\n  \"a\": \"tab\\t quote\\\" back\\\\ \\u00e9 \\u2603 \\u007f <+&>\",\n  \"b\": [\n    1,\n    0.1,\n    1e-05,\n    1e+16,\n    -2.5,\n    true,\n    null\n  ],\n  \"d\": [],\n  \"e\": {}\n}";
        Assert.AreEqual(expected, PythonJson.Serialize(value));
    }
}
