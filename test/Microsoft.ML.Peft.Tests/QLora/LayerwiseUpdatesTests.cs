using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.QLora;

/// <summary>
/// <see cref="LayerwiseUpdates"/>: per-block AdamW steps taken from backward give bit-for-bit the weights of one
/// whole-model step after backward (same updates, in another order), with and without checkpointed blocks, and no
/// gradient is left behind.
/// </summary>
[TestClass]
public sealed class LayerwiseUpdatesTests
{
    /// <summary>h + W2·gelu(W1·h).</summary>
    private sealed class Block : Module
    {
        private readonly ModuleSlot<LinearLayer> up, down;

        public Block(int width, Generator init)
        {
            up = RegisterModule<LinearLayer>("up", new Linear(width, 2 * width, init));
            down = RegisterModule<LinearLayer>("down", new Linear(2 * width, width, init));
        }

        public Tensor Forward(Tensor h) => h.Add(down.Module.Forward(up.Module.Forward(h).Gelu()));
    }

    private static List<Block> Blocks() => [.. Enumerable.Range(0, 3).Select(i => new Block(8, new Generator(20 + (ulong)i)))];

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void PerBlockSteps_DuringBackward_EqualOneStepAfterBackward(bool checkpoint)
    {
        var x = Tensor.Randn(new Generator(3), 5, 8); // no gradient: as after a frozen embedding
        var reference = Blocks();
        var whole = new AdamW(reference.SelectMany(b => b.Parameters()), learningRate: 0.05);
        var layerwise = Blocks();
        var perBlock = layerwise.Select(b => new AdamW(b.Parameters(), learningRate: 0.05)).ToArray();
        var hookOrder = new List<int>();
        for (int step = 0; step < 3; step++)
        {
            using (TensorScope.Begin())
            {
                Loss(reference, x, checkpoint, null).Backward();
                whole.Step();
                whole.ZeroGrad();
            }
            using (TensorScope.Begin())
            {
                Loss(layerwise, x, checkpoint, i =>
                {
                    hookOrder.Add(i);
                    Assert.IsTrue(layerwise[i].Parameters().All(p => p.Grad is not null), $"block {i}'s gradients are there when its hook runs");
                    perBlock[i].Step();
                    perBlock[i].ReleaseGradients();
                }).Backward();
            }
            Assert.IsTrue(layerwise.SelectMany(b => b.Parameters()).All(p => p.Grad is null), "every gradient was freed during backward");
        }
        CollectionAssert.AreEqual(new[] { 2, 1, 0, 2, 1, 0, 2, 1, 0 }, hookOrder, "last block first, once per backward");
        var expected = reference.SelectMany(b => b.Parameters()).ToList();
        var actual = layerwise.SelectMany(b => b.Parameters()).ToList();
        for (int i = 0; i < expected.Count; i++) CollectionAssert.AreEqual(expected[i].ToArray(), actual[i].ToArray(), $"parameter {i}");
        Assert.IsTrue(expected[0].ToArray().Zip(Blocks()[0].Parameters().First().ToArray()).Any(p => p.First != p.Second), "the weights moved");
    }

    [TestMethod]
    public void WithoutGradients_TheInputIsReturnedAsIs()
    {
        var x = Tensor.Randn(new Generator(3), 2, 8);
        using var noGrad = Autograd.NoGrad();
        Assert.AreSame(x, LayerwiseUpdates.AfterBlockBackward(x, () => Assert.Fail("never called")));
    }

    private static Tensor Loss(List<Block> blocks, Tensor x, bool checkpoint, Action<int>? afterBlockBackward)
    {
        var h = x;
        for (int i = 0; i < blocks.Count; i++)
        {
            var block = blocks[i];
            int index = i;
            if (afterBlockBackward is not null) h = LayerwiseUpdates.AfterBlockBackward(h, () => afterBlockBackward(index));
            h = checkpoint ? Checkpointing.Checkpoint(block.Forward, h, block.Parameters()) : block.Forward(h);
        }
        return h.Mul(h).Mean();
    }
}
