using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.QLora;

/// <summary>
/// Gradient checkpointing: gradients with recomputation must equal those of the plain graph bit for bit (same ops,
/// same order, same dropout masks), and the pool must need fewer bytes. Not parallelised: the memory test reads the
/// process-wide pool counters.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class CheckpointingTests
{
    /// <summary>h + W2·dropout(gelu(W1·norm(h))): a pre-norm residual MLP block with its own dropout generator.</summary>
    private sealed class Block : Module
    {
        private readonly ModuleSlot<LayerNorm> norm;
        private readonly ModuleSlot<LinearLayer> up, down;
        private readonly ModuleSlot<Dropout> dropout;

        public Block(int width, Generator init, Generator dropoutGenerator)
        {
            norm = RegisterModule("norm", new LayerNorm(width));
            up = RegisterModule<LinearLayer>("up", new Linear(width, 2 * width, init));
            dropout = RegisterModule("dropout", new Dropout(0.25f, dropoutGenerator));
            down = RegisterModule<LinearLayer>("down", new Linear(2 * width, width, init));
        }

        public Tensor Forward(Tensor h) => h.Add(down.Module.Forward(dropout.Module.Forward(up.Module.Forward(norm.Module.Forward(h)).Gelu())));
    }

    private sealed class BlockStack : Module
    {
        private readonly ModuleSlot<ModuleList<Block>> blocks;

        public BlockStack(int depth, int width, Generator dropoutGenerator)
        {
            var init = new Generator(11);
            blocks = RegisterModule("blocks", new ModuleList<Block>(Enumerable.Range(0, depth).Select(_ => new Block(width, init, dropoutGenerator))));
        }

        public Generator? Dropout { get; init; }

        public Tensor Forward(Tensor x, bool checkpoint)
        {
            var h = x;
            for (int i = 0; i < blocks.Module.Count; i++)
            {
                var block = blocks.Module[i];
                h = checkpoint ? Checkpointing.Checkpoint(block.Forward, h, block.Parameters(), Dropout!) : block.Forward(h);
            }
            return h;
        }
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void Gradients_WithRecompute_AreBitIdentical(bool inputRequiresGrad)
    {
        var dropoutGenerator = new Generator(5);
        var model = new BlockStack(3, 16, dropoutGenerator) { Dropout = dropoutGenerator };
        var x = Tensor.Randn(new Generator(3), 4, 5, 16).RequiresGrad_(inputRequiresGrad);
        var (plainLoss, plainGrads) = Run(model, x, dropoutGenerator, checkpoint: false);
        var (ckptLoss, ckptGrads) = Run(model, x, dropoutGenerator, checkpoint: true);
        Assert.AreEqual(plainLoss, ckptLoss);
        Assert.AreEqual(plainGrads.Count, ckptGrads.Count);
        for (int i = 0; i < plainGrads.Count; i++) CollectionAssert.AreEqual(plainGrads[i], ckptGrads[i], $"gradient #{i}");
        Assert.AreEqual(model.Parameters().Count() + (inputRequiresGrad ? 1 : 0), plainGrads.Count);
    }

    [TestMethod]
    public void Checkpoint_UnderNoGrad_JustRunsTheBlock()
    {
        var g = new Generator(1);
        var model = new BlockStack(1, 8, g) { Dropout = g };
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var y = model.Forward(Tensor.Randn(new Generator(2), 2, 8), checkpoint: true);
        Assert.IsNull(y.GradFn);
    }

    [TestMethod]
    public void PeakPoolBytes_AreLowerWithCheckpointing()
    {
        var dropoutGenerator = new Generator(5);
        var model = new BlockStack(8, 128, dropoutGenerator) { Dropout = dropoutGenerator };
        var x = Tensor.Randn(new Generator(3), 256, 128).RequiresGrad_();
        Run(model, x, dropoutGenerator, checkpoint: false); // allocates the persistent gradient buffers first
        long plain = PeakPoolBytes(() => Run(model, x, dropoutGenerator, checkpoint: false));
        long checkpointed = PeakPoolBytes(() => Run(model, x, dropoutGenerator, checkpoint: true));
        Console.WriteLine($"peak pool bytes: plain {plain}, checkpointed {checkpointed}");
        // Plain keeps ~10 activations of 256×128..256 per block for 8 blocks; checkpointing keeps one block's worth
        // plus the 8 block outputs.
        Assert.IsTrue(checkpointed * 2 < plain, $"pool bytes: plain {plain}, checkpointed {checkpointed}");
    }

    /// <summary>
    /// Bytes the pool had to allocate, starting empty: for every size class, the most buffers of that class alive at
    /// once. An upper bound on the true peak of live pooled bytes and the memory a process really needs.
    /// </summary>
    private static long PeakPoolBytes(Action step)
    {
        TensorPool.Trim();
        long before = TensorPool.AllocatedBytes;
        step();
        return TensorPool.AllocatedBytes - before;
    }

    private static (float Loss, List<float[]> Grads) Run(BlockStack model, Tensor x, Generator dropoutGenerator, bool checkpoint)
    {
        model.ZeroGrad();
        x.ZeroGrad();
        dropoutGenerator.Offset = 0;
        float loss;
        using (TensorScope.Begin())
        {
            var y = model.Forward(x, checkpoint);
            var l = y.Mul(y).Mean();
            l.Backward();
            loss = l.Item();
        }
        var grads = model.Parameters().Select(p => p.Grad!.ToArray()).ToList();
        if (x.RequiresGrad) grads.Add(x.Grad!.ToArray());
        return (loss, grads);
    }
}

internal static class ModuleGradExtensions
{
    public static void ZeroGrad(this Module module)
    {
        foreach (var p in module.Parameters()) p.ZeroGrad();
    }
}
