using Microsoft.ML.Peft.AdapterTraining;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Lora;

[TestClass]
public sealed class LoraPlusTests
{
    [TestMethod]
    public void Groups_PutLoraBAndVectorsAtRatioTimesLr_BiasesWithoutDecay_AndEverythingElseAtLr()
    {
        var model = new TinyModel(new Generator(7));
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "q_proj", "fc1" }, Rank = 2, UseDora = true, Bias = LoraBias.LoraOnly }, generator: new Generator(1));
        var groups = LoraPlus.CreateParameterGroups(peft, 8);
        Assert.AreEqual(3, groups.Count);
        var byName = peft.TrainableParameters().ToDictionary(p => p.Parameter, p => p.Name, (IEqualityComparer<Tensor>)ReferenceEqualityComparer.Instance);
        var a = groups[0].Parameters.Select(p => byName[p]).ToList();
        var b = groups[1].Parameters.Select(p => byName[p]).ToList();
        var noDecay = groups[2].Parameters.Select(p => byName[p]).ToList();
        Assert.IsTrue(a.All(n => n.Contains(".lora_A.", StringComparison.Ordinal)) && a.Count == 4, string.Join(", ", a));
        Assert.IsTrue(b.All(n => n.Contains(".lora_B.", StringComparison.Ordinal) || n.Contains(".lora_magnitude_vector.", StringComparison.Ordinal)) && b.Count == 8, string.Join(", ", b));
        Assert.IsTrue(noDecay.All(n => n.EndsWith(".base_layer.bias", StringComparison.Ordinal)) && noDecay.Count == 4, string.Join(", ", noDecay));
        Assert.AreEqual(1.0, groups[0].LearningRateScale);
        Assert.AreEqual(8.0, groups[1].LearningRateScale);
        Assert.IsNull(groups[1].WeightDecay);
        Assert.AreEqual(8.0, groups[2].LearningRateScale);
        Assert.AreEqual(0.0, groups[2].WeightDecay);
        Assert.AreEqual(peft.TrainableParameters().Count(), groups.Sum(g => g.Parameters.Count), "every trainable parameter in exactly one group");
    }

    [TestMethod]
    public void OneAdamWStep_MovesEveryAEntryByLr_AndEveryBEntryBy16Lr()
    {
        // Adam's first step is lr·g/(|g| + eps) ≈ lr·sign(g): the size of each move is the group's learning rate.
        var model = new TinyModel(new Generator(7));
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "q_proj", "v_proj" }, Rank = 2, InitLoraWeights = LoraInit.Random }, generator: new Generator(1));
        var hooks = AdapterTrainingHooks.Create(peft, totalSteps: 1, loraPlusLrRatio: LoraPlus.DefaultLrRatio);
        const double lr = 1e-3;
        var optimizer = new AdamW(hooks.ParameterGroups(peft), learningRate: lr, weightDecay: 0);
        model.Forward(LoraFixtures.Input()).Mul(Tensor.Randn(new Generator(9), 2, 5, 3)).Sum().Backward();
        var before = peft.TrainableParameters().ToDictionary(p => p.Name, p => (Values: p.Parameter.ToArray(), Grad: p.Parameter.Grad!.ToArray()));
        optimizer.Step();
        int checkedA = 0, checkedB = 0;
        foreach (var (name, p) in peft.TrainableParameters())
        {
            double expected = name.Contains(".lora_B.", StringComparison.Ordinal) ? 16 * lr : lr;
            var after = p.ToArray();
            var (values, grad) = before[name];
            for (int i = 0; i < after.Length; i++)
            {
                if (Math.Abs(grad[i]) < 1e-3) continue; // eps/|g| would show; such entries are rare
                double move = after[i] - (double)values[i];
                Assert.AreEqual(-Math.Sign(grad[i]) * expected, move, 2e-7, $"{name}[{i}]");
                if (expected > lr) checkedB++;
                else checkedA++;
            }
        }
        Assert.IsTrue(checkedA > 40 && checkedB > 40, $"checked {checkedA} A and {checkedB} B entries");
    }
}
