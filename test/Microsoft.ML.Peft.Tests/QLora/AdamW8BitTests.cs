using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Quantization;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.QLora;

/// <summary>
/// <see cref="AdamW8Bit"/>: float32 and paged storage against <see cref="AdamW"/> bit for bit, 8-bit states against the
/// 8-bit blockwise quantizer and against float32 AdamW on a quadratic problem.
/// </summary>
[TestClass]
public sealed class AdamW8BitTests
{
    /// <summary>f(x) = ½ Σ aᵢ(xᵢ − tᵢ)², curvatures aᵢ in [0.5, 2.5): the gradient a∘(x − t) is set directly.</summary>
    private sealed class Quadratic
    {
        private readonly float[] a, t;

        public Quadratic(int n, ulong seed)
        {
            var g = new Generator(seed);
            a = new float[n];
            t = new float[n];
            g.FillUniform(a, 0.5f, 2.5f);
            g.FillNormal(t);
        }

        public Tensor NewParameter(ulong seed) => Tensor.Randn(new Generator(seed), a.Length).RequiresGrad_();

        /// <summary>Sets x.Grad = a∘(x − t) through a backward pass of Σ x·stop_grad(a∘(x − t)).</summary>
        public void SetGradient(Tensor x)
        {
            var xs = x.ToArray();
            var grad = new float[xs.Length];
            for (int i = 0; i < xs.Length; i++) grad[i] = a[i] * (xs[i] - t[i]);
            x.ZeroGrad();
            using var scope = TensorScope.Begin();
            x.Mul(Tensor.From(grad, grad.Length)).Sum().Backward();
        }

        public double Loss(float[] x)
        {
            double sum = 0;
            for (int i = 0; i < x.Length; i++) sum += 0.5 * a[i] * Math.Pow(x[i] - t[i], 2);
            return sum;
        }
    }

    [TestMethod]
    [DataRow(AdamWStateStorage.Float32)]
    [DataRow(AdamWStateStorage.PagedFloat32)]
    public void Float32States_AreBitIdenticalToAdamW(AdamWStateStorage storage)
    {
        var problem = new Quadratic(5000, 1);
        var small = new Quadratic(7, 2);
        Tensor x1 = problem.NewParameter(3), y1 = small.NewParameter(4), x2 = problem.NewParameter(3), y2 = small.NewParameter(4);
        var reference = new AdamW([x1, y1], learningRate: 3e-2, weightDecay: 0.1);
        using var optimizer = new AdamW8Bit([x2, y2], storage, learningRate: 3e-2, weightDecay: 0.1);
        for (int step = 0; step < 25; step++)
        {
            problem.SetGradient(x1);
            small.SetGradient(y1);
            problem.SetGradient(x2);
            small.SetGradient(y2);
            reference.Step();
            optimizer.Step();
            CollectionAssert.AreEqual(x1.ToArray(), x2.ToArray(), $"step {step + 1}");
            CollectionAssert.AreEqual(y1.ToArray(), y2.ToArray(), $"step {step + 1}");
        }
        Assert.AreEqual(8L * (5000 + 7), optimizer.StateBytes);
    }

    [TestMethod]
    public void PagedStateFile_ExistsWhileInUse_AndIsDeletedOnDispose()
    {
        var x = new Quadratic(300, 5).NewParameter(6);
        string path;
        using (var optimizer = new AdamW8Bit([x], AdamWStateStorage.PagedEightBit, minEightBitSize: 0))
        {
            Assert.IsNotNull(optimizer.PagedFile);
            path = optimizer.PagedFile.FilePath;
            Assert.IsTrue(File.Exists(path));
            new Quadratic(300, 5).SetGradient(x);
            optimizer.Step();
            Assert.IsTrue(optimizer.PagedFile.UsedBytes >= 2 * 300 + 8 * 2);
        }
        Assert.IsFalse(File.Exists(path), path);
        using var inMemory = new AdamW8Bit([x], AdamWStateStorage.EightBit);
        Assert.IsNull(inMemory.PagedFile);
    }

    [TestMethod]
    [DataRow(256)]
    [DataRow(2048)]
    public void EightBit_FirstStep_EqualsAdamW_AndStoresQuantizedMoments(int blockSize)
    {
        // Step 1 starts from states that decode to exactly 0 and quantizes only after the update, so the parameters
        // match float32 AdamW bit for bit; the stored moments are the blockwise 8-bit codes of (1−β₁)g and (1−β₂)g².
        const int n = 5000;
        var problem = new Quadratic(n, 7);
        Tensor x1 = problem.NewParameter(8), x2 = problem.NewParameter(8);
        problem.SetGradient(x1);
        problem.SetGradient(x2);
        var g = x2.Grad!.ToArray();
        new AdamW([x1], learningRate: 1e-2).Step();
        using var optimizer = new AdamW8Bit([x2], learningRate: 1e-2, blockSize: blockSize);
        optimizer.Step();
        CollectionAssert.AreEqual(x1.ToArray(), x2.ToArray());
        Assert.IsTrue(optimizer.UsesEightBit(x2));

        var m = new float[n];
        var v = new float[n];
        Assert.IsTrue(optimizer.TryGetState(x2, m, v, out int step));
        Assert.AreEqual(1, step);
        var expectedM = RoundTrip(BlockwiseDynamicQuantizer.Signed(blockSize), g.Select(gi => (float)(1 - 0.9) * gi).ToArray());
        var expectedV = RoundTrip(BlockwiseDynamicQuantizer.Unsigned(blockSize), g.Select(gi => (float)(1 - 0.999) * gi * gi).ToArray());
        CollectionAssert.AreEqual(expectedM, m);
        CollectionAssert.AreEqual(expectedV, v);
        Assert.AreEqual(2L * n + 8L * BlockwiseDynamicQuantizer.BlockCount(n, blockSize), optimizer.StateBytes);
    }

    [TestMethod]
    public void PagedEightBit_IsBitIdenticalToInMemoryEightBit()
    {
        var problem = new Quadratic(4500, 9);
        Tensor x1 = problem.NewParameter(10), x2 = problem.NewParameter(10);
        using var memory = new AdamW8Bit([x1], AdamWStateStorage.EightBit, learningRate: 2e-2);
        using var paged = new AdamW8Bit([x2], AdamWStateStorage.PagedEightBit, learningRate: 2e-2);
        for (int step = 0; step < 10; step++)
        {
            problem.SetGradient(x1);
            problem.SetGradient(x2);
            memory.Step();
            paged.Step();
        }
        CollectionAssert.AreEqual(x1.ToArray(), x2.ToArray());
    }

    [TestMethod]
    public void EightBit_Tracks32BitAdamW_Over100Steps()
    {
        const int n = 8192;
        var problem = new Quadratic(n, 11);
        Tensor x32 = problem.NewParameter(12), x8 = problem.NewParameter(12);
        double initialLoss = problem.Loss(x32.ToArray());
        var reference = new AdamW([x32], learningRate: 2e-2, weightDecay: 0);
        using var optimizer = new AdamW8Bit([x8], learningRate: 2e-2, weightDecay: 0);
        double maxDeviation = 0;
        for (int step = 0; step < 100; step++)
        {
            problem.SetGradient(x32);
            problem.SetGradient(x8);
            reference.Step();
            optimizer.Step();
            var a = x32.ToArray();
            var b = x8.ToArray();
            for (int i = 0; i < n; i++) maxDeviation = Math.Max(maxDeviation, Math.Abs(a[i] - b[i]));
        }
        double loss32 = problem.Loss(x32.ToArray()), loss8 = problem.Loss(x8.ToArray());
        double rms = Math.Sqrt(x32.ToArray().Zip(x8.ToArray(), (a, b) => (double)(a - b) * (a - b)).Average());
        Console.WriteLine($"initial {initialLoss:G6}, 32-bit {loss32:G6}, 8-bit {loss8:G6}, max |x8 − x32| over all steps {maxDeviation:G4}, final RMS {rms:G4} (100 steps × lr 0.02 = 2.0)");
        // Each step moves a coordinate by at most ≈ lr, so 100 steps span ≤ 2.0. Measured: max deviation 0.19 (one
        // coordinate of 8192, where m/√v is small and its 8-bit relative error large), final RMS deviation 0.029,
        // losses within 0.2% of the initial loss. Bounds: max < 0.25 (12.5% of the path), RMS < 0.05, loss within 2%.
        Assert.IsTrue(maxDeviation < 0.25, $"max deviation {maxDeviation}");
        Assert.IsTrue(rms < 0.05, $"RMS deviation {rms}");
        Assert.IsTrue(loss8 < 0.2 * initialLoss, $"8-bit loss {loss8} vs initial {initialLoss}");
        Assert.AreEqual(loss32, loss8, 0.02 * initialLoss);
    }

    [TestMethod]
    public void Constructor_RejectsUnsupportedBlockSize()
    {
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new AdamW8Bit(Array.Empty<Tensor>(), blockSize: 64));
        StringAssert.Contains(e.Message, "64");
    }

    private static float[] RoundTrip(BlockwiseDynamicQuantizer quantizer, float[] values)
    {
        var codes = new byte[values.Length];
        var absmax = new float[quantizer.BlockCount(values.Length)];
        quantizer.Quantize(values, codes, absmax);
        var result = new float[values.Length];
        quantizer.Dequantize(codes, absmax, result);
        return result;
    }
}
