using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Bayesian.LaplaceLora;

/// <summary><see cref="ProbedMatrix.Capture"/> on its own: masked rows, the head's trailing 1, and no allocation after warm-up.</summary>
[TestClass]
public sealed class ProbedMatrixCaptureTests
{
    /// <summary>
    /// y = x·Wᵀ + b over [2, 3, 2] inputs with mask [1 0 1 | 0 1 1]: the captured rows are the real positions of example 0
    /// then example 1, each input row ending in 1, each gradient row the seed's row; once its buffers have grown, a
    /// capture allocates nothing.
    /// </summary>
    [TestMethod]
    public void Capture_KeepsRealPositionsInExampleOrder_AndReusesItsBuffers()
    {
        var weight = Tensor.From([1f, 2f, 3f, 4f, 5f, 6f], 3, 2);
        var bias = Tensor.From([0.5f, -0.5f, 1f], 3);
        var matrix = new ProbedMatrix("head", weight, bias) { Recording = true };
        float[] x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        var seed = Enumerable.Range(0, 18).Select(i => (float)(i + 1) / 10).ToArray();
        int[] mask = [1, 0, 1, 0, 1, 1];

        RunAndCapture(matrix, x, seed, mask);

        Assert.AreEqual(4, matrix.Rows);
        CollectionAssert.AreEqual(new[] { 0, 2, 4 }, matrix.ExampleRowStart.ToArray());
        // Real positions 0, 2 (example 0) and 4, 5 (example 1): inputs [x | 1], gradients = the seed's rows.
        CollectionAssert.AreEqual(new[] { 1f, 2, 1, 5, 6, 1, 9, 10, 1, 11, 12, 1 }, matrix.Inputs.ToArray());
        CollectionAssert.AreEqual(seed[0..3].Concat(seed[6..9]).Concat(seed[12..18]).ToArray(), matrix.OutputGradients.ToArray());

        RunAndCapture(matrix, x, seed, mask);   // warm-up of everything else on this path
        using (var scope = TensorScope.Begin())
        {
            // Recorded in this scope; only Capture is measured.
            var xs = Tensor.From(x, 2, 3, 2);
            var y = matrix.Apply(xs);
            y.Backward(Tensor.From(seed, 2, 3, 3));
            long before = GC.GetAllocatedBytesForCurrentThread();
            matrix.Capture(2, mask);
            Assert.AreEqual(0, GC.GetAllocatedBytesForCurrentThread() - before, "Capture allocated after warm-up");
            matrix.Clear();
        }
        Assert.AreEqual(4, matrix.Rows);
    }

    private static void RunAndCapture(ProbedMatrix matrix, float[] x, float[] seed, int[] mask)
    {
        using var scope = TensorScope.Begin();
        var y = matrix.Apply(Tensor.From(x, 2, 3, 2));
        y.Backward(Tensor.From(seed, 2, 3, 3));
        matrix.Capture(2, mask);
        matrix.Clear();
    }
}
