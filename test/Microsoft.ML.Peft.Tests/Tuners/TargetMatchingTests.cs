using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Tuners;

/// <summary>PEFT's check_target_module_exists / get_pattern_key rules, case by case.</summary>
[TestClass]
public sealed class TargetMatchingTests
{
    private static TargetMatch Check(string name, ModuleSelector targets, ModuleSelector? exclude = null, string[]? save = null, int[]? layers = null, string[]? pattern = null) =>
        TargetMatching.Check(name, targets, exclude, save, layers, pattern);

    [TestMethod]
    public void NameLists_MatchWholeNamesOrDotSuffixes()
    {
        ModuleSelector targets = new[] { "q_proj", "self_attn.v_proj" };
        Assert.AreEqual(TargetMatch.Targeted, Check("q_proj", targets));
        Assert.AreEqual(TargetMatch.Targeted, Check("model.layers.0.self_attn.q_proj", targets));
        Assert.AreEqual(TargetMatch.Targeted, Check("model.layers.0.self_attn.v_proj", targets));
        Assert.AreEqual(TargetMatch.NotTargeted, Check("model.layers.0.self_attn.xq_proj", targets));
        Assert.AreEqual(TargetMatch.NotTargeted, Check("model.layers.0.cross_attn.v_proj", targets));
        Assert.AreEqual(TargetMatch.NotTargeted, Check("model.layers.0.self_attn.q_proj.base_layer", targets));
    }

    [TestMethod]
    public void Strings_AreFullMatchRegularExpressions()
    {
        ModuleSelector targets = @".*\.(q|v)_proj";
        Assert.AreEqual(TargetMatch.Targeted, Check("model.layers.3.self_attn.v_proj", targets));
        Assert.AreEqual(TargetMatch.NotTargeted, Check("model.layers.3.self_attn.v_proj.lora_A", targets), "must match to the end");
        Assert.AreEqual(TargetMatch.NotTargeted, Check("v_proj", targets), "must match from the start");
        Assert.IsTrue(((ModuleSelector)"all-linear").IsAllLinear && ((ModuleSelector)"All-Linear").IsAllLinear);
        Assert.ThrowsExactly<InvalidOperationException>(() => ModuleSelector.AllLinear.Matches("x"));
    }

    [TestMethod]
    public void Exclusions_AndModulesToSave_WinOverTargets()
    {
        ModuleSelector targets = new[] { "dense" };
        Assert.AreEqual(TargetMatch.Excluded, Check("encoder.layer.0.output.dense", targets, exclude: new[] { "output.dense" }));
        Assert.AreEqual(TargetMatch.Excluded, Check("encoder.layer.0.output.dense", targets, exclude: @"encoder\.layer\.0\..*"));
        Assert.AreEqual(TargetMatch.Targeted, Check("encoder.layer.1.output.dense", targets, exclude: @"encoder\.layer\.0\..*"));
        Assert.AreEqual(TargetMatch.Excluded, Check("classifier.dense", targets, save: ["classifier"]), "inside a modules_to_save module");
        Assert.AreEqual(TargetMatch.Targeted, Check("pre_classifier.dense", targets, save: ["classifier"]));
    }

    [TestMethod]
    public void LayersToTransform_ReadTheFirstLayerIndex_AndApplyOnlyToSuffixMatches()
    {
        ModuleSelector targets = new[] { "q_proj", "model.layers.5.self_attn.q_proj" };
        Assert.AreEqual(TargetMatch.Targeted, Check("model.layers.1.self_attn.q_proj", targets, layers: [1, 2]));
        Assert.AreEqual(TargetMatch.NotTargeted, Check("model.layers.3.self_attn.q_proj", targets, layers: [1, 2]));
        Assert.AreEqual(TargetMatch.Targeted, Check("model.layers.5.self_attn.q_proj", targets, layers: [1]), "exact names skip the layer filter (PEFT)");
        // Lazy match: the first numbered segment is the layer, not a nested expert index.
        Assert.AreEqual(1, TargetMatching.LayerIndex("model.layers.1.mlp.experts.0.w1", null));
        Assert.AreEqual(4, TargetMatching.LayerIndex("transformer.h.4.attn.c_attn", ["h"]));
        Assert.AreEqual(2, TargetMatching.LayerIndex("encoder.blocks.7.x.layers.2.q", ["layers", "blocks"]), "patterns are tried in order");
        Assert.IsNull(TargetMatching.LayerIndex("lm_head", null));
        Assert.AreEqual(TargetMatch.NotTargeted, Check("model.h.1.attn.q_proj", targets, layers: [1], pattern: ["layers"]), "pattern not present");
    }

    [TestMethod]
    public void PatternKeys_MatchAtADotBoundaryToTheEnd_FirstKeyWins()
    {
        string[] keys = ["v_proj", @"layers\.0\..*", "q_proj"];
        Assert.AreEqual("v_proj", TargetMatching.PatternKey(keys, "model.layers.0.self_attn.v_proj"));
        Assert.AreEqual(@"layers\.0\..*", TargetMatching.PatternKey(keys, "model.layers.0.self_attn.q_proj"));
        Assert.AreEqual("q_proj", TargetMatching.PatternKey(keys, "model.layers.1.self_attn.q_proj"));
        Assert.IsNull(TargetMatching.PatternKey(keys, "model.layers.1.self_attn.xv_proj"), "no dot boundary");
        Assert.IsNull(TargetMatching.PatternKey(keys, "model.layers.1.mlp.fc1"));
    }
}
