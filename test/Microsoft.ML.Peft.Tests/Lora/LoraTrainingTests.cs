using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Lora;

/// <remarks>Not parallelised: the pool counter it reads is process-wide.</remarks>
[TestClass]
[DoNotParallelize]
public sealed class LoraTrainingTests
{
    [TestMethod]
    public void WarmLoraTrainingStep_LearnsAndAllocatesAlmostNothing()
    {
        var g = new Generator(1);
        var model = new TinyModel(g, d: 32, hidden: 64, classes: 4);
        var baseValues = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.ToArray());
        var peft = PeftModel.Inject(model, new LoraConfig
        {
            TargetModules = ModuleSelector.AllLinear,
            Rank = 4,
            Alpha = 8,
            Dropout = 0.1,
            TaskType = "SEQ_CLS",
        }, generator: new Generator(2));
        var optimizer = new AdamW(peft.TrainableParameters().Select(p => p.Parameter), learningRate: 1e-2);
        var x = Tensor.Randn(g, 16, 32);
        var targets = Tensor.FromInt32(Enumerable.Range(0, 16).Select(i => i % 4).ToArray(), 16);

        float Step()
        {
            using var scope = TensorScope.Begin();
            var loss = model.Forward(x).CrossEntropy(targets);
            loss.Backward();
            optimizer.Step();
            optimizer.ZeroGrad();
            return loss.Item();
        }

        float firstLoss = Step();
        for (int i = 0; i < 2; i++) Step();
        long poolBefore = TensorPool.AllocatedBytes;
        long before = GC.GetAllocatedBytesForCurrentThread();
        const int steps = 10;
        float lastLoss = 0;
        for (int i = 0; i < steps; i++) lastLoss = Step();
        long perStep = (GC.GetAllocatedBytesForCurrentThread() - before) / steps;

        Assert.AreEqual(poolBefore, TensorPool.AllocatedBytes, "warm LoRA steps are served entirely by the pool");
        // Twice the plain MLP's budget (TrainingStepAllocationTests): 8 adapted layers add ~4 ops each, plus dropout masks.
        Assert.IsTrue(perStep < 96 * 1024, $"a warm LoRA training step allocated {perStep} bytes");
        Assert.IsTrue(lastLoss < 0.5 * firstLoss, $"training reduces the loss ({firstLoss} → {lastLoss})");
        foreach (var (name, p) in model.NamedParameters())
        {
            string baseName = name.Replace(".base_layer", "", StringComparison.Ordinal);
            if (name.Contains(".lora_", StringComparison.Ordinal) || name.StartsWith("classifier.", StringComparison.Ordinal)) continue;
            CollectionAssert.AreEqual(baseValues[baseName], p.ToArray(), $"frozen base parameter {name} changed");
        }
        Console.WriteLine($"managed bytes per warm LoRA step: {perStep}");
    }
}
