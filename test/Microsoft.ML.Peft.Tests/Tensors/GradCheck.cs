using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Tensors;

/// <summary>
/// Checks analytic gradients against central finite differences. The checked scalar is L = Σ f(inputs) ∘ R with a
/// fixed random R (so every output element contributes with a distinct weight); the backward pass is seeded with R
/// directly, and each numeric derivative (L(x+ε) − L(x−ε))/2ε evaluates L in double from the float outputs.
/// </summary>
internal static class GradCheck
{
    /// <summary>
    /// Asserts |analytic − numeric| ≤ atol + rtol·|numeric| for every element of every input with RequiresGrad.
    /// </summary>
    public static void Check(Func<Tensor[], Tensor> f, Tensor[] inputs, double eps = 1e-3, double atol = 2e-3, double rtol = 1e-2, ulong seed = 7)
    {
        foreach (var t in inputs) t.ZeroGrad();
        var y = f(inputs);
        var r = Tensor.Randn(new Generator(seed), y.ShapeArray());
        y.Backward(r);
        var weights = r.ToArray();
        for (int i = 0; i < inputs.Length; i++)
        {
            var x = inputs[i];
            if (!x.RequiresGrad) continue;
            Assert.IsNotNull(x.Grad, $"input #{i} got no gradient");
            var analytic = x.Grad!.ToArray();
            var data = x.AsSpan<float>();
            for (int j = 0; j < analytic.Length; j++)
            {
                float original = data[j];
                data[j] = (float)(original + eps);
                double plus = Evaluate(f, inputs, weights);
                data[j] = (float)(original - eps);
                double minus = Evaluate(f, inputs, weights);
                data[j] = original;
                double numeric = (plus - minus) / (2 * eps);
                double diff = Math.Abs(analytic[j] - numeric);
                if (diff > atol + rtol * Math.Abs(numeric))
                    Assert.Fail($"input #{i} element {j}: analytic {analytic[j]:G9} vs numeric {numeric:G9} (diff {diff:G3})");
            }
        }
    }

    private static double Evaluate(Func<Tensor[], Tensor> f, Tensor[] inputs, float[] weights)
    {
        using var noGrad = Autograd.NoGrad();
        var y = f(inputs).ToArray();
        double sum = 0;
        for (int k = 0; k < y.Length; k++) sum += (double)y[k] * weights[k];
        return sum;
    }

    /// <summary>A leaf requiring grad with normal random values.</summary>
    public static Tensor Param(ulong seed, params int[] shape) => Tensor.Randn(new Generator(seed), shape).RequiresGrad_();

    /// <summary>Asserts two float arrays agree elementwise within a tolerance.</summary>
    public static void AssertClose(float[] expected, float[] actual, double tolerance, string what = "")
    {
        Assert.AreEqual(expected.Length, actual.Length, $"{what}: length");
        for (int i = 0; i < expected.Length; i++)
        {
            if (Math.Abs(expected[i] - actual[i]) > tolerance)
                Assert.Fail($"{what}[{i}]: expected {expected[i]:G9}, actual {actual[i]:G9}");
        }
    }
}
