using System.Text.Json;
using Microsoft.ML.Peft.AdaLora;
using Microsoft.ML.Peft.AdapterTraining;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.AdaLora;

/// <summary>
/// The rank allocator against PEFT's RankAllocator restated in PyTorch (build/reference/lora_variants_reference.py,
/// Fixtures/lora/adalora_allocator.*): two layers, init_r 4 → target_r 2, given parameter values and gradients at each
/// of 8 steps; E after every allocation must match exactly (kept entries keep their value, pruned ones are 0).
/// </summary>
[TestClass]
public sealed class RankAllocatorReferenceTests
{
    private sealed class Holder : Module
    {
        public Holder(LinearLayer q) => RegisterModule("q", q);
    }

    private sealed class TwoLayers : Module
    {
        public TwoLayers(Generator g) =>
            RegisterModule("layers", new ModuleList<Holder>([new Holder(new Linear(5, 3, g)), new Holder(new Linear(6, 2, g))]));
    }

    [TestMethod]
    public void MasksAndSchedule_MatchPeftsRankAllocator()
    {
        var f = LoraFixtures.Load("adalora_allocator.safetensors");
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(LoraFixtures.Folder, "adalora_allocator.json")));
        var model = new TwoLayers(new Generator(1));
        var config = new AdaLoraConfig { TargetModules = new[] { "q" }, InitR = 4, TargetR = 2, TInit = 1, TFinal = 1, DeltaT = 1, TotalStep = 6, Beta1 = 0.85, Beta2 = 0.85 };
        var peft = PeftModel.Inject(model, config, generator: new Generator(2));
        var hooks = (AdaLoraTrainingHooks)((IProvidesTrainingHooks)peft.ActiveConfig).CreateTrainingHooks(peft, "default", 6);
        var budgets = json.RootElement.GetProperty("budgets").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        string[] paths = ["layers.0.q", "layers.1.q"];
        for (int step = 0; step < budgets.Length; step++)
        {
            Assert.AreEqual(budgets[step], hooks.Allocator.BudgetSchedule(step).Budget, $"budget at step {step}");
            Tensor? loss = null;
            foreach (var path in paths)
            {
                var layer = (AdaLoraLinear)model.GetModule(path);
                foreach (var (suffix, p) in new[] { ("lora_A", layer.LoraA("default")), ("lora_E", layer.LoraE("default")), ("lora_B", layer.LoraB("default")) })
                {
                    using (Autograd.NoGrad()) p.CopyFrom_(f[$"step{step}.value.{path}.{suffix}"]);
                    // d/dp Σ p ⊙ G = G exactly: the gradients the reference used.
                    var term = p.Mul(f[$"step{step}.grad.{path}.{suffix}"]).Sum();
                    loss = loss is null ? term : loss.Add(term);
                }
            }
            loss!.Backward();
            hooks.AfterOptimizerStep(peft, step);
            foreach (var path in paths)
            {
                var e = ((AdaLoraLinear)model.GetModule(path)).LoraE("default");
                LoraFixtures.AssertBitIdentical(f[$"step{step}.after.{path}.lora_E"], e, $"step {step} {path} E");
            }
            foreach (var p in peft.TrainableParameters()) p.Parameter.ZeroGrad();
        }
        var pattern = json.RootElement.GetProperty("final_rank_pattern");
        foreach (var path in paths)
        {
            var expected = pattern.GetProperty(path).EnumerateArray().Select(e => e.GetBoolean()).ToArray();
            CollectionAssert.AreEqual(expected, hooks.RankPattern![path], path);
        }
    }
}
