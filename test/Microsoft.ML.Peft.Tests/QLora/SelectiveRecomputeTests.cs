using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Quantization;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.QLora;

/// <summary>
/// Selective recompute (<see cref="Checkpointing"/>'s <c>keepOutputsOf</c>): a checkpoint that keeps the outputs of
/// chosen 4-bit layers hands the very tensors of the first forward to the recompute (no second product), and the
/// gradients stay those of the plain graph bit for bit.
/// </summary>
[TestClass]
public sealed class SelectiveRecomputeTests
{
    private const int Width = 64, Hidden = 128, Rank = 4;

    /// <summary>h + (Q2 + B2A2)(gelu((Q1 + B1A1)(h))): two NF4 projections with trainable low-rank updates.</summary>
    private sealed class QuantizedBlock
    {
        public readonly QuantizedLinear Up, Down;
        public readonly Tensor A1, B1, A2, B2;

        /// <summary>Every output of <see cref="Up"/> and <see cref="Down"/>, in call order (first forward, then recompute).</summary>
        public readonly List<(string Layer, Tensor Output)> Calls = [];

        public QuantizedBlock()
        {
            var g = new Generator(21);
            Up = Quantized(Hidden, Width, g);
            Down = Quantized(Width, Hidden, g);
            A1 = Tensor.Randn(g, Rank, Width).Mul(0.3f).RequiresGrad_();
            B1 = Tensor.Randn(g, Hidden, Rank).Mul(0.3f).RequiresGrad_();
            A2 = Tensor.Randn(g, Rank, Hidden).Mul(0.3f).RequiresGrad_();
            B2 = Tensor.Randn(g, Width, Rank).Mul(0.3f).RequiresGrad_();
        }

        public Tensor[] Parameters => [A1, B1, A2, B2];

        public Tensor Forward(Tensor h)
        {
            var up = Up.Forward(h);
            Calls.Add(("up", up));
            var t = up.Add(h.Linear(A1).Linear(B1)).Gelu();
            var down = Down.Forward(t);
            Calls.Add(("down", down));
            return h.Add(down.Add(t.Linear(A2).Linear(B2)));
        }

        private static QuantizedLinear Quantized(int outFeatures, int inFeatures, Generator g)
        {
            var w = new float[outFeatures * inFeatures];
            g.FillNormal(w, 0f, 0.1f);
            return new QuantizedLinear(QuantizedTensor4Bit.Quantize(w, [outFeatures, inFeatures], FourBitType.NF4, 64, doubleQuant: true));
        }
    }

    [TestMethod]
    [DataRow("none")]
    [DataRow("down")]
    [DataRow("up,down")]
    public void Gradients_KeepingOutputs_AreBitIdentical_AndTheKeptTensorsAreReused(string kept)
    {
        var plain = Run(null);
        var block = new QuantizedBlock();
        Module[] keep = kept == "none" ? [] : [.. kept.Split(',').Select(name => name == "up" ? (Module)block.Up : block.Down)];
        var checkpointed = Run((block, keep));

        Assert.AreEqual(plain.Loss, checkpointed.Loss);
        for (int i = 0; i < plain.Grads.Count; i++) CollectionAssert.AreEqual(plain.Grads[i], checkpointed.Grads[i], $"gradient #{i}");

        // Two blocks ran, each forward once and once more in backward: per block, up and down of the first forward, then
        // of the recompute. A kept layer's recompute call returns the first forward's tensor itself; the others compute anew.
        Assert.HasCount(8, block.Calls);
        foreach (int first in new[] { 0, 2 })
        {
            var (firstUp, firstDown) = (block.Calls[first].Output, block.Calls[first + 1].Output);
            int recompute = 7 - first - 1; // backward runs the second block first: its recompute is calls 4-5, the first block's 6-7
            var (againUp, againDown) = (block.Calls[recompute].Output, block.Calls[recompute + 1].Output);
            Assert.AreEqual(kept.Contains("up"), ReferenceEquals(firstUp.Storage, againUp.Storage), $"up of forward call {first}");
            Assert.AreEqual(kept.Contains("down"), ReferenceEquals(firstDown.Storage, againDown.Storage), $"down of forward call {first}");
        }
    }

    [TestMethod]
    public void KeptOutput_ModifiedInPlace_IsReportedAtTheRecompute()
    {
        var block = new QuantizedBlock();
        var x = Tensor.Randn(new Generator(3), 2, 5, Width);
        using var scope = TensorScope.Begin();
        var y = Checkpointing.Checkpoint(h =>
        {
            var up = block.Up.Forward(h);
            if (!Autograd.IsGradEnabled) up.Mul_(2f); // the first forward overwrites its kept output
            return h.Add(block.Down.Forward(up.Add(h.Linear(block.A1).Linear(block.B1)).Gelu()));
        }, x, block.Parameters, [block.Up]);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => y.Sum().Backward());
        StringAssert.Contains(e.Message, "modified in place");
    }

    /// <summary>Two blocks in a row (the same weights), loss = mean of squares; plain when <paramref name="checkpoint"/> is null.</summary>
    private static (float Loss, List<float[]> Grads) Run((QuantizedBlock Block, Module[] Keep)? checkpoint)
    {
        var block = checkpoint?.Block ?? new QuantizedBlock();
        var x = Tensor.Randn(new Generator(3), 2, 5, Width);
        float loss;
        using (TensorScope.Begin())
        {
            var h = x;
            for (int i = 0; i < 2; i++)
            {
                h = checkpoint is { } c ? Checkpointing.Checkpoint(block.Forward, h, block.Parameters, c.Keep) : block.Forward(h);
            }
            var l = h.Mul(h).Mean();
            l.Backward();
            loss = l.Item();
        }
        return (loss, [.. block.Parameters.Select(p => p.Grad!.ToArray())]);
    }
}
