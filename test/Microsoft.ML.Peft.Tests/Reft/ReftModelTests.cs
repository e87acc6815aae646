using Microsoft.ML.Peft.Generation;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Reft;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Models;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Reft;

/// <summary>
/// ReFT inside a model (the tiny random Llama fixture, 2 blocks, hidden 32): parameter counts from the formula, the
/// edit at the chosen positions against the formula in double, untouched positions bit for bit, positions of short and
/// left-padded rows, the config's errors, and save → load.
/// </summary>
[TestClass]
public sealed class ReftModelTests
{
    private const int Hidden = 32;

    internal static CausalLanguageModel Llama() => PretrainedModel.LoadForCausalLM(TestPaths.Fixture("reference", "models", "llama_gqa"));

    private static Tensor Ids(int[] ids, int batch, int seq) => Tensor.FromInt32(ids, batch, seq);

    [TestMethod]
    [DataRow("f2+l1", false, 4)]
    [DataRow("f2+l1", true, 2)]
    [DataRow("l3", false, 2)]
    public void TrainableParameters_AreInterventionsTimesRTimes2dPlus1(string positions, bool share, int interventions)
    {
        var model = Llama();
        var config = new ReftConfig { Layers = [0, 1], LowRankDimension = 3, Positions = positions, ShareWeights = share };
        var peft = PeftModel.Inject(model, config);
        long expected = interventions * 3 * (2 * Hidden + 1);
        Assert.AreEqual(expected, config.TrainableParameterCount(Hidden));
        Assert.AreEqual(expected, peft.GetNumberOfTrainableParameters().Trainable);
        Assert.AreEqual(interventions, peft.TrainableParameters().Count(p => p.Name.EndsWith("rotate_layer.householder", StringComparison.Ordinal)));
        CollectionAssert.AreEqual(new[] { "model.interventions" }, peft.TargetedModuleNames().ToArray());
    }

    [TestMethod]
    public void ChosenPositions_GetTheFormula_OtherPositionsAreBitIdentical()
    {
        // Right padding: row 0 has 6 real tokens, row 1 has 4. "f2+l1" → row 0: {0, 1} first, {5} last; row 1: {0, 1}, {3}.
        var ids = Ids([5, 17, 42, 9, 33, 8, 7, 21, 11, 3, 0, 0], 2, 6);
        var mask = Tensor.FromInt32([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], 2, 6);
        var model = Llama();
        model.Eval();
        var baseStates = new List<Tensor>();
        using (Autograd.NoGrad()) model.Decoder.Forward(ids, mask, hiddenStates: baseStates);

        var peft = PeftModel.Inject(model, new ReftConfig { Layers = [0], LowRankDimension = 3, Positions = "f2+l1" });
        var layer = (ReftLayer)model.GetModule("model.interventions");
        var states = new List<Tensor>();
        using (Autograd.NoGrad()) model.Decoder.Forward(ids, mask, hiddenStates: states);

        var h = baseStates[1].ToArray();      // block 0's output without ReFT (the input of the intervention)
        var edited = states[1].ToArray();     // …as block 1 sees it
        var chosen = new Dictionary<int, string> { [0] = "first", [1] = "first", [5] = "last", [6] = "first", [7] = "first", [9] = "last" };
        var interventions = layer.Interventions("default").ToDictionary(i => i.Name, i => i.Intervention);
        for (int p = 0; p < 12; p++)
        {
            var vector = h[(p * Hidden)..((p + 1) * Hidden)];
            if (!chosen.TryGetValue(p, out var group))
            {
                CollectionAssert.AreEqual(vector, edited[(p * Hidden)..((p + 1) * Hidden)], $"position {p} must be untouched");
                continue;
            }
            var intervention = interventions["layer_0_" + group];
            var rot = ReftMath.Rotation(ReftMath.ToDouble(intervention.RotateLayer.Householder.ToArray()), 3, Hidden);
            var expected = ReftMath.Phi(true, rot, ReftMath.ToDouble(intervention.LearnedSource.Weight.ToArray()),
                ReftMath.ToDouble(intervention.LearnedSource.Bias!.ToArray()), ReftMath.ToDouble(vector), 3, Hidden);
            for (int j = 0; j < Hidden; j++) Assert.AreEqual(expected[j], edited[p * Hidden + j], 2e-5, $"position {p} ({group}) feature {j}");
        }

        using (peft.DisableAdapters())
        {
            var disabled = new List<Tensor>();
            using (Autograd.NoGrad()) model.Decoder.Forward(ids, mask, hiddenStates: disabled);
            CollectionAssert.AreEqual(baseStates[^1].ToArray(), disabled[^1].ToArray(), "disabled adapters give the base model");
        }
    }

    [TestMethod]
    public void Positions_Parse_AndShortRowsFollowPyreftsRule()
    {
        Assert.AreEqual(new ReftPositions(1, 1), ReftPositions.Parse("f1+l1"));
        Assert.AreEqual(new ReftPositions(3, 0), ReftPositions.Parse("f3"));
        Assert.AreEqual(new ReftPositions(0, 2), ReftPositions.Parse("l2"));
        foreach (var bad in new[] { "", "x1", "f", "l1+f1", "f0", "f1+l1+l2", "f-1", "f1 l1" })
        {
            var e = Assert.ThrowsExactly<PeftConfigException>(() => ReftPositions.Parse(bad), bad);
            StringAssert.Contains(e.Message, $"positions '{bad}'");
        }

        // Rows of 7, 4, 3, 1 and 0 real tokens, "f3+l2": min(3, n/2) first and min(2, n/2) last positions.
        int[] lengths = [7, 4, 3, 1, 0];
        var mask = new int[5 * 7];
        for (int b = 0; b < 5; b++)
        {
            for (int t = 0; t < lengths[b]; t++) mask[b * 7 + t] = 1;
        }
        var (first, last) = new ReftPositions(3, 2).Masks(new ResidualStreamContext(5, 7, mask, 0));
        CollectionAssert.AreEqual(new[]
        {
            1, 1, 1, 0, 0, 0, 0,
            1, 1, 0, 0, 0, 0, 0,
            1, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0,
        }, first.AsReadOnlySpan<int>().ToArray());
        CollectionAssert.AreEqual(new[]
        {
            0, 0, 0, 0, 0, 1, 1,
            0, 0, 1, 1, 0, 0, 0,
            0, 0, 1, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0,
        }, last.AsReadOnlySpan<int>().ToArray());
    }

    [TestMethod]
    public void LeftPadding_EditsTheSameTokensAsRightPadding()
    {
        var model = Llama();
        model.Eval();
        PeftModel.Inject(model, new ReftConfig { Layers = [0, 1], LowRankDimension = 2, Positions = "f1+l1" });
        // Positions count real tokens, so the row [7, 21, 11] gets the same edits wherever its padding is. Compare
        // block 0's output (position ids follow the slots, so later blocks legitimately differ with rotary positions).
        var right = new List<Tensor>();
        var left = new List<Tensor>();
        using (Autograd.NoGrad())
        {
            model.Decoder.Forward(Ids([7, 21, 11, 0], 1, 4), Tensor.FromInt32([1, 1, 1, 0], 1, 4), Tensor.FromInt32([0, 1, 2, 3], 1, 4), hiddenStates: right);
            model.Decoder.Forward(Ids([0, 7, 21, 11], 1, 4), Tensor.FromInt32([0, 1, 1, 1], 1, 4), Tensor.FromInt32([0, 0, 1, 2], 1, 4), hiddenStates: left);
        }
        var r = right[1].ToArray();
        var l = left[1].ToArray();
        for (int t = 0; t < 3; t++)
            Close.Assert(r[(t * Hidden)..((t + 1) * Hidden)], l[((t + 1) * Hidden)..((t + 2) * Hidden)], $"token {t}", atol: 1e-5, rtol: 1e-5);
    }

    [TestMethod]
    public void BadConfigs_NameTheFieldAndTheModel()
    {
        var e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(Llama(), new ReftConfig { Layers = [0, 2] }));
        StringAssert.Contains(e.Message, "block 2 does not exist; LlamaModel has 2 blocks (0..1)");
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(Llama(), new ReftConfig { Layers = [0], LowRankDimension = 33 }));
        StringAssert.Contains(e.Message, "low_rank_dimension 33 exceeds LlamaModel's hidden size 32");
        e = Assert.ThrowsExactly<PeftConfigException>(() => new ReftConfig { Layers = [] }.Validate());
        StringAssert.Contains(e.Message, "layers");
        e = Assert.ThrowsExactly<PeftConfigException>(() => new ReftConfig { Layers = [1, 1] }.Validate());
        StringAssert.Contains(e.Message, "repeats");
        e = Assert.ThrowsExactly<PeftConfigException>(() => new ReftConfig { Layers = [0], Component = "mlp_output" }.Validate());
        StringAssert.Contains(e.Message, "component 'mlp_output'");
        e = Assert.ThrowsExactly<PeftConfigException>(() => new ReftConfig { Layers = [0], Dropout = 1 }.Validate());
        StringAssert.Contains(e.Message, "dropout");
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftConfig.FromJson("""{"peft_type": "REFT", "layers": [0], "act_fn": "relu"}""", "cfg.json"));
        StringAssert.Contains(e.Message, "cfg.json: act_fn 'relu'");
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftConfig.FromJson("""{"peft_type": "REFT", "layers": [0], "positions": "first"}""", "cfg.json"));
        StringAssert.Contains(e.Message, "cfg.json: positions 'first'");
    }

    [TestMethod]
    public void Config_RoundTripsThroughJson()
    {
        var config = new ReftConfig
        {
            Layers = [1, 0], LowRankDimension = 2, Positions = "f3+l2", ShareWeights = true, Dropout = 0.05,
            InterventionType = ReftInterventionType.Direft, TaskType = "SEQ_CLS",
        };
        var back = (ReftConfig)PeftConfig.FromJson(config.ToJson());
        Assert.AreEqual(config.ToJson(), back.ToJson());
        CollectionAssert.AreEqual(new[] { 1, 0 }, back.Layers.ToArray());
        Assert.AreEqual(ReftInterventionType.Direft, back.InterventionType);
        Assert.AreEqual(0.05, back.Dropout);
        Assert.IsTrue(back.ShareWeights);
        StringAssert.Contains(config.ToJson(), "\"peft_type\": \"REFT\"");
    }

    [TestMethod]
    public void SaveThenLoad_GivesBitIdenticalTensorsAndOutputs()
    {
        var ids = Ids([5, 17, 42, 9, 33, 7, 21, 11, 0, 0], 2, 5);
        var mask = Tensor.FromInt32([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], 2, 5);
        var model = Llama();
        model.Eval();
        var peft = PeftModel.Inject(model, new ReftConfig { Layers = [0, 1], LowRankDimension = 3, Positions = "f2+l1", Dropout = 0.1 }, generator: new Generator(21));
        model.Eval(); // the new intervention modules start in training mode (as torch modules do): no dropout when scoring
        float[] expected;
        using (Autograd.NoGrad()) expected = model.Decoder.Forward(ids, mask).ToArray();
        string dir = Path.Combine(Path.GetTempPath(), $"peft-reft-{Guid.NewGuid():N}");
        try
        {
            peft.SavePretrained(dir);
            var saved = peft.GetAdapterStateDict();
            Assert.AreEqual(12, saved.Count, "4 interventions × (householder, weight, bias)");
            Assert.IsTrue(saved.ContainsKey("base_model.model.model.interventions.layer_1_last.rotate_layer.householder"), string.Join(", ", saved.Keys));

            var fresh = Llama();
            fresh.Eval();
            var loaded = PeftModel.FromPretrained(fresh, dir, generator: new Generator(99));
            fresh.Eval();
            Assert.IsInstanceOfType<ReftConfig>(loaded.ActiveConfig);
            foreach (var (key, tensor) in loaded.GetAdapterStateDict()) CollectionAssert.AreEqual(saved[key].ToArray(), tensor.ToArray(), key);
            using (Autograd.NoGrad()) CollectionAssert.AreEqual(expected, fresh.Decoder.Forward(ids, mask).ToArray());
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void PromptMethodsAndReft_AreNotCombined()
    {
        var model = Llama();
        var peft = PeftModel.Inject(model, new ReftConfig { Layers = [0] });
        peft.AddAdapter("prompt", new Microsoft.ML.Peft.PromptTuning.PromptTuningConfig { NumVirtualTokens = 2 });
        peft.SetAdapter("prompt");
        var e = Assert.ThrowsExactly<NotSupportedException>(() => model.Decoder.Forward(Ids([5, 6], 1, 2)));
        StringAssert.Contains(e.Message, "prompt-learning");
    }

    [TestMethod]
    public void Generation_EditsThePromptOnly_AndLeftPaddedBatchesMatchSinglePrompts()
    {
        var model = Llama();
        PeftModel.Inject(model, new ReftConfig { Layers = [0, 1], LowRankDimension = 3, Positions = "f1+l1" }, generator: new Generator(5));
        model.Eval();
        int[][] prompts = [[5, 17, 42, 9, 33], [7, 21, 11]];
        // The batch is left padded by Generate; each row's first new token must be the argmax of its own unpadded,
        // uncached forward (the edits land on the same real tokens). Later steps continue from the cache unedited.
        var results = model.Generate(prompts, new GenerationOptions { MaxNewTokens = 3 });
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.AreEqual(3, results[i].TokenIds.Count, $"prompt {i}");
            float[] logits;
            using (Autograd.NoGrad()) logits = model.Forward(Ids(prompts[i], 1, prompts[i].Length)).ToArray();
            var last = logits[^128..];
            Assert.AreEqual(Array.IndexOf(last, last.Max()), results[i].TokenIds[0], $"prompt {i}: first generated token");
        }
    }
}
