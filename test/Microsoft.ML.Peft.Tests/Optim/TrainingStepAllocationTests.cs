using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Optim;

// Reads the process-wide tensor-pool counter, so no other test class may run beside it.
[TestClass]
[DoNotParallelize]
public sealed class TrainingStepAllocationTests
{
    private sealed class Mlp : Module
    {
        public Mlp(Generator g)
        {
            Hidden = RegisterModule<LinearLayer>("hidden", new Linear(128, 256, g));
            Norm = RegisterModule("norm", new LayerNorm(256));
            Output = RegisterModule<LinearLayer>("output", new Linear(256, 10, g));
        }

        public ModuleSlot<LinearLayer> Hidden { get; }

        public ModuleSlot<LayerNorm> Norm { get; }

        public ModuleSlot<LinearLayer> Output { get; }

        public Tensor Forward(Tensor x) => Output.Module.Forward(Norm.Module.Forward(Hidden.Module.Forward(x)).Gelu());
    }

    [TestMethod]
    public void WarmTrainingStep_AllocatesAlmostNothing()
    {
        var g = new Generator(1);
        var model = new Mlp(g);
        var optimizer = new AdamW(model.Parameters(trainableOnly: true), learningRate: 1e-3);
        var x = Tensor.Randn(g, 64, 128);
        var targets = Tensor.FromInt32(Enumerable.Range(0, 64).Select(i => i % 10).ToArray(), 64);
        float firstLoss = 0, lastLoss = 0;

        float Step()
        {
            using var scope = TensorScope.Begin();
            var loss = model.Forward(x).CrossEntropy(targets);
            loss.Backward();
            GradientClipping.ClipGradNorm(optimizer.Parameters, 1.0);
            optimizer.Step();
            optimizer.ZeroGrad();
            return loss.Item();
        }

        for (int i = 0; i < 3; i++) firstLoss = i == 0 ? Step() : firstLoss + 0 * Step();
        long poolBefore = TensorPool.AllocatedBytes;
        long before = GC.GetAllocatedBytesForCurrentThread();
        const int steps = 10;
        for (int i = 0; i < steps; i++) lastLoss = Step();
        long perStep = (GC.GetAllocatedBytesForCurrentThread() - before) / steps;

        // One activation here is 64·256 floats = 64 KiB; a step touches ~15 such buffers (~1 MiB). What remains per
        // step is small bookkeeping: tensor and node objects, closures, shape arrays.
        Assert.AreEqual(poolBefore, TensorPool.AllocatedBytes, "warm steps are served entirely by the pool");
        Assert.IsTrue(perStep < 48 * 1024, $"a warm training step allocated {perStep} bytes");
        Assert.IsTrue(lastLoss < firstLoss, $"training reduces the loss ({firstLoss} → {lastLoss})");
        Console.WriteLine($"managed bytes per warm step: {perStep}");
    }
}
