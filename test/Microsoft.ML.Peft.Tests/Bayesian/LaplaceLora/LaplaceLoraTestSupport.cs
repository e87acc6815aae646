using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Bayesian.LaplaceLora;

/// <summary>logits = fc2(tanh(fc1(x))), x [B, in]: the smallest network with two LoRA layers and a non-linearity between.</summary>
internal sealed class TinyMlp : Module
{
    public TinyMlp(Generator g, int inputs, int hidden, int classes)
    {
        Fc1 = RegisterModule<LinearLayer>("fc1", new Linear(inputs, hidden, g));
        Fc2 = RegisterModule<LinearLayer>("fc2", new Linear(hidden, classes, g));
    }

    public ModuleSlot<LinearLayer> Fc1 { get; }

    public ModuleSlot<LinearLayer> Fc2 { get; }

    public Tensor Forward(Tensor x) => Fc2.Module.Forward(Fc1.Module.Forward(x).Tanh());

    /// <summary>A TinyMlp with LoRA (rank r, random A and B so every gradient is non-zero) on fc1 and fc2, in eval mode.</summary>
    public static (TinyMlp Model, PeftModel Peft) WithLora(int seed, int inputs = 5, int hidden = 6, int classes = 3, int rank = 2)
    {
        var model = new TinyMlp(new Generator((ulong)seed), inputs, hidden, classes);
        var peft = PeftModel.Inject(model, new LoraConfig
        {
            TargetModules = new[] { "fc1", "fc2" },
            Rank = rank,
            Alpha = 2 * rank,
            InitLoraWeights = LoraInit.Random,
        }, generator: new Generator((ulong)seed + 100));
        model.Eval();
        return (model, peft);
    }
}

/// <summary>
/// Brute-force references computed with the engine's ordinary autograd on LoRA parameters, one example at a time
/// (independent of the recording layers Laplace-LoRA installs).
/// </summary>
internal static class BruteForce
{
    /// <summary>The LoRA matrices in Laplace-LoRA's block order: layer by layer, A then B.</summary>
    public static List<(string Name, Tensor Weight)> LoraMatrices(PeftModel peft)
    {
        var list = new List<(string, Tensor)>();
        foreach (var (path, layer) in peft.TunerLayers())
        {
            var lora = (LoraLinear)layer;
            list.Add(($"{path}.lora_A.default", lora.LoraA("default")));
            list.Add(($"{path}.lora_B.default", lora.LoraB("default")));
        }
        return list;
    }

    /// <summary>Gradient wrt every LoRA matrix of seedᵀ·logits(example n) (seed length C), by a separate forward and backward of that example alone.</summary>
    public static double[][] Gradients(PeftModel peft, Func<Tensor, Tensor> logitsOf, Tensor input, int n, double[] seed)
    {
        var matrices = LoraMatrices(peft);
        using var scope = TensorScope.Begin();
        foreach (var (_, w) in matrices) w.ZeroGrad();
        var logits = logitsOf(input.Narrow(0, n, 1));
        logits.Backward(Tensor.From(Array.ConvertAll(seed, v => (float)v), 1, seed.Length));
        return matrices.Select(m => Array.ConvertAll(m.Weight.Grad!.ToArray(), v => (double)v)).ToArray();
    }

    /// <summary>Softmax of the logits of example n, in double.</summary>
    public static double[] Probabilities(Func<Tensor, Tensor> logitsOf, Tensor input, int n)
    {
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var f = Array.ConvertAll(logitsOf(input.Narrow(0, n, 1)).ToArray(), v => (double)v);
        double max = f.Max();
        var e = f.Select(v => Math.Exp(v - max)).ToArray();
        double s = e.Sum();
        return e.Select(v => v / s).ToArray();
    }

    /// <summary>Per block, the Jacobian (C × d) of example n's logits, one backward per class.</summary>
    public static double[][] Jacobians(PeftModel peft, Func<Tensor, Tensor> logitsOf, Tensor input, int n, int classes)
    {
        var rows = new double[classes][][];
        for (int c = 0; c < classes; c++)
        {
            var seed = new double[classes];
            seed[c] = 1;
            rows[c] = Gradients(peft, logitsOf, input, n, seed);
        }
        int blocks = rows[0].Length;
        return Enumerable.Range(0, blocks).Select(k => rows.SelectMany(r => r[k]).ToArray()).ToArray();
    }

    /// <summary>Dense Σ (d×d) of a posterior block, column by column through its covariance product.</summary>
    public static double[] DenseCovariance(ILaplacePosteriorBlock block)
    {
        int d = block.ParameterCount;
        var sigma = new double[d * d];
        var e = new double[d];
        var column = new double[d];
        for (int j = 0; j < d; j++)
        {
            Array.Clear(e);
            e[j] = 1;
            block.CovarianceTimes(e, column);
            for (int i = 0; i < d; i++) sigma[i * d + j] = column[i];
        }
        return sigma;
    }

    /// <summary>J Σ Jᵀ for J (rows × d) and dense Σ (d × d).</summary>
    public static double[] Project(double[] jacobian, int rows, double[] sigma)
    {
        int d = jacobian.Length / rows;
        var result = new double[rows * rows];
        for (int a = 0; a < rows; a++)
        for (int b = 0; b < rows; b++)
        {
            double s = 0;
            for (int i = 0; i < d; i++)
            {
                double ji = jacobian[a * d + i];
                if (ji == 0) continue;
                for (int j = 0; j < d; j++) s += ji * sigma[i * d + j] * jacobian[b * d + j];
            }
            result[a * rows + b] = s;
        }
        return result;
    }

    /// <summary>Σ_n outer(v_n, v_n) over vectors of length d, plus optional weight per vector.</summary>
    public static double[] Outer(double[] u, double[] v)
    {
        var m = new double[u.Length * v.Length];
        for (int i = 0; i < u.Length; i++)
        for (int j = 0; j < v.Length; j++) m[i * v.Length + j] = u[i] * v[j];
        return m;
    }
}
