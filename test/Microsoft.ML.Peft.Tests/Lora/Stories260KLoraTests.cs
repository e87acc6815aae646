using System.Text.Json;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Lora;

/// <summary>
/// LoRA on the real stories260K checkpoint's module names and shapes (Llama: model.layers.N.self_attn.q_proj, ...),
/// arranged as LlamaForSequenceClassification with a 2-label score head. The architecture's forward is not needed:
/// these tests check target matching, "all-linear", modules_to_save and PEFT's parameter accounting against the line
/// that build/reference/lora_reference.py computes with PEFT's own formula in PyTorch.
/// </summary>
[TestClass]
public sealed class Stories260KLoraTests
{
    /// <summary>A module tree with the checkpoint's dotted names: "*_proj" and "score" weights become Linear layers.</summary>
    private sealed class Node : Module
    {
        public void AddChild(string name, Module module) => RegisterModule(name, module);

        public void AddParameter(string name, Tensor value) => RegisterParameter(name, value);
    }

    private static Node LoadTree()
    {
        var root = new Node();
        using var file = SafeTensorsFile.Open(Path.Combine(TestPaths.Stories260K, "model.safetensors"));
        var byModule = file.Tensors.GroupBy(t => t.Name[..t.Name.LastIndexOf('.')]);
        foreach (var group in byModule)
        {
            var parts = group.Key.Split('.');
            var parent = root;
            foreach (var part in parts[..^1])
            {
                var existing = parent.NamedChildren().FirstOrDefault(c => c.Name == part).Module;
                if (existing is null)
                {
                    existing = new Node();
                    parent.AddChild(part, existing);
                }
                parent = (Node)existing;
            }
            var tensors = group.ToDictionary(t => t.Name[(group.Key.Length + 1)..], t => Tensor.From(t.ToFloat32Array(), [.. t.Shape]));
            if (parts[^1].EndsWith("_proj", StringComparison.Ordinal))
            {
                parent.AddChild(parts[^1], new Linear(tensors["weight"], tensors.GetValueOrDefault("bias")));
            }
            else
            {
                var leaf = new Node();
                foreach (var (name, t) in tensors) leaf.AddParameter(name, t);
                parent.AddChild(parts[^1], leaf);
            }
        }
        root.AddChild("score", new Linear(64, 2, new Generator(0), hasBias: false));
        return root;
    }

    private static string ExpectedLine(string testCase)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixture("lora", "stories260k_lora.json")));
        return doc.RootElement.GetProperty("cases").GetProperty(testCase).GetProperty("line").GetString()!;
    }

    [TestMethod]
    public void QueryValueLora_CountsAsPeft()
    {
        var model = LoadTree();
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "q_proj", "v_proj" }, Rank = 8 });
        Assert.AreEqual(10, peft.TargetedModuleNames().Count);
        Assert.AreEqual(ExpectedLine("q_proj_v_proj_r8"), peft.TrainableParametersSummary());
        // v_proj is 64 → 32 (4 KV heads of 8): A [8, 64], B [32, 8].
        var v = (LoraLinear)model.GetModule("model.layers.3.self_attn.v_proj");
        CollectionAssert.AreEqual(new[] { 32, 8 }, v.LoraB("default").ShapeArray());
    }

    [TestMethod]
    public void AllLinearForSequenceClassification_CountsAsPeft_AndTrainsTheScoreHead()
    {
        var model = LoadTree();
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = ModuleSelector.AllLinear, Rank = 16, TaskType = "SEQ_CLS" });
        Assert.AreEqual(35, peft.TargetedModuleNames().Count, "7 projections × 5 layers; the score head is a modules_to_save");
        Assert.IsFalse(peft.TargetedModuleNames().Contains("score"));
        Assert.AreEqual(ExpectedLine("all_linear_r16_seq_cls"), peft.TrainableParametersSummary());
        Assert.IsTrue(model.GetParameter("score.weight").RequiresGrad);
        Assert.IsFalse(model.GetParameter("model.embed_tokens.weight").RequiresGrad);
    }
}
