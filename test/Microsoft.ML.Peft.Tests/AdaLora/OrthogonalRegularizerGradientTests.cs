using Microsoft.ML.Peft.AdaLora;
using Microsoft.ML.Peft.AdapterTraining;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.AdaLora;

/// <summary>
/// The gradient of AdaLoRA's orthogonality regulariser, w · (1/n) Σ (‖A·Aᵀ − I‖_F + ‖Bᵀ·B − I‖_F), against central finite
/// differences of the same loss computed in double from the factors, for every entry of every A and B.
/// </summary>
[TestClass]
public sealed class OrthogonalRegularizerGradientTests
{
    private const double Weight = 0.3;

    /// <summary>‖M·Mᵀ − I‖_F (rowsGram) or ‖Mᵀ·M − I‖_F of a row-major rows × cols matrix, in double.</summary>
    private static double DistanceToIdentity(double[] m, int rows, int cols, bool rowsGram)
    {
        int n = rowsGram ? rows : cols;
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double dot = 0;
                if (rowsGram)
                {
                    for (int k = 0; k < cols; k++) dot += m[i * cols + k] * m[j * cols + k];
                }
                else
                {
                    for (int k = 0; k < rows; k++) dot += m[k * cols + i] * m[k * cols + j];
                }
                double d = dot - (i == j ? 1 : 0);
                sum += d * d;
            }
        }
        return Math.Sqrt(sum);
    }

    private sealed record Factor(Tensor Tensor, double[] Values, int Rows, int Cols, bool RowsGram);

    private static double LossInDouble(List<Factor> factors) =>
        Weight * factors.Sum(f => DistanceToIdentity(f.Values, f.Rows, f.Cols, f.RowsGram)) / factors.Count;

    [TestMethod]
    public void Gradient_OfEveryFactorEntry_MatchesFiniteDifferencesInDouble()
    {
        var model = new TinyModel(new Generator(7));
        var config = new AdaLoraConfig
        {
            TargetModules = new[] { "q_proj", "v_proj", "fc1" }, InitR = 4, TargetR = 2, TInit = 2, TFinal = 3, DeltaT = 2,
            TotalStep = 20, InitLoraWeights = false, OrthRegWeight = Weight,
        };
        var peft = PeftModel.Inject(model, config, generator: new Generator(1));
        var hooks = AdapterTrainingHooks.Create(peft, totalSteps: 20);
        var factors = new List<Factor>();
        foreach (var (_, tuner) in peft.TunerLayers())
        {
            var layer = (AdaLoraLinear)tuner;
            var a = layer.LoraA("default");
            var b = layer.LoraB("default");
            factors.Add(new Factor(a, Array.ConvertAll(a.ToArray(), v => (double)v), a.Size(0), a.Size(1), RowsGram: true));
            factors.Add(new Factor(b, Array.ConvertAll(b.ToArray(), v => (double)v), b.Size(0), b.Size(1), RowsGram: false));
        }
        Assert.AreEqual(12, factors.Count, "2 blocks × 3 targets × (A, B)");
        var loss = hooks.ExtraLoss(peft)!;
        Assert.AreEqual(LossInDouble(factors), loss.Item(), 1e-5 * LossInDouble(factors), "value");
        loss.Backward();

        const double h = 1e-6;
        foreach (var factor in factors)
        {
            var grad = factor.Tensor.Grad!.ToArray();
            for (int i = 0; i < factor.Values.Length; i++)
            {
                double saved = factor.Values[i];
                factor.Values[i] = saved + h;
                double plus = LossInDouble(factors);
                factor.Values[i] = saved - h;
                double minus = LossInDouble(factors);
                factor.Values[i] = saved;
                double numeric = (plus - minus) / (2 * h);
                Assert.AreEqual(numeric, grad[i], 1e-5 + 1e-4 * Math.Abs(numeric), $"{factor.Tensor} entry {i}");
            }
        }
    }
}
