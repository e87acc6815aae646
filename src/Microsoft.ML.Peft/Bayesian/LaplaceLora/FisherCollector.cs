using System.Numerics;
using System.Runtime.CompilerServices;
using Microsoft.ML.Peft.LinearAlgebra;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// Gathers, batch by batch, the Fisher of the probed LoRA matrices: K-FAC factors (input rows into A, output-gradient
/// rows into G, via <see cref="KroneckerFactorAccumulator"/>, low rank for large sides) or the exact diagonal
/// Σ_n (∂ℓ_n/∂W)², plus the MAP log-likelihood of the true labels.
/// </summary>
/// <remarks>
/// Methods with the fit's per-row loops are compiled fully optimised at once (AggressiveOptimization): a fit runs once
/// per process, each of them only a few hundred times, and while the fit keeps compiling new methods the runtime's tiering
/// leaves them in unoptimised tier-0 code for the whole fit (measured: Gram 3.3× and finiteness check 7× slower).
/// </remarks>
internal sealed class FisherCollector
{
    private readonly List<ProbedMatrix> matrices;
    private readonly FisherKind fisher;
    private readonly GaussianRandom random;
    private readonly KroneckerFactorAccumulator[] inputFactors, outputFactors;
    private readonly double[][] diagonals;
    private readonly bool diagonal;
    private readonly double[][] inputGrams, outputGrams;   // per matrix, this batch's XᵀX (exact factors only; reused every batch)
    private readonly bool[] inputGramReady;                 // inputGrams[k] holds this batch's Gram (shared by identical inputs)
    private readonly int[] inputTwin;                        // j < k whose input Gram k took in every batch so far; -1: none
    private readonly float[] gemmScratch;                   // the float GEMM's output, width² of the widest exact factor

    public FisherCollector(List<ProbedMatrix> matrices, LaplaceLoraOptions options)
    {
        this.matrices = matrices;
        fisher = options.Fisher;
        random = new GaussianRandom(options.Seed);
        diagonal = options.Curvature == CurvatureKind.Diagonal;
        inputFactors = matrices.Select(m => new KroneckerFactorAccumulator(m.Width, false, options.LowRankThreshold, options.LowRankRank, $"'{m.Name}' input factor A")).ToArray();
        outputFactors = matrices.Select(m => new KroneckerFactorAccumulator(m.Out, false, options.LowRankThreshold, options.LowRankRank, $"'{m.Name}' output-gradient factor G")).ToArray();
        diagonals = matrices.Select(m => diagonal ? new double[m.Out * m.Width] : []).ToArray();
        inputGrams = inputFactors.Select(f => f.IsLowRank ? [] : new double[f.Size * f.Size]).ToArray();
        outputGrams = outputFactors.Select(f => f.IsLowRank ? [] : new double[f.Size * f.Size]).ToArray();
        inputGramReady = new bool[matrices.Count];
        inputTwin = new int[matrices.Count];
        Array.Fill(inputTwin, int.MinValue);   // not decided before the first batch
        int widest = inputFactors.Concat(outputFactors).Where(f => !f.IsLowRank).Select(f => f.Size).DefaultIfEmpty(0).Max();
        gemmScratch = new float[widest * widest];
    }

    public int Examples { get; private set; }
    public int Classes { get; private set; }
    public double LogLikelihood { get; private set; }

    public void Add(LoraProbeSet probes, Func<Tensor, Tensor> logitsFunction, LaplaceBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        int size = batch.Input.Rank > 0 ? batch.Input.Size(0) : 0;
        if (size == 0 || batch.Labels.Length != size)
            throw new ArgumentException($"Laplace-LoRA: batch input {batch.Input.ShapeString} has {size} examples but {batch.Labels.Length} labels");
        // The seed is ∂(Σ_n ℓ_n)/∂logits = softmax − onehot(label) per row: each row is its own example's gradient,
        // since examples do not interact in the forward.
        probes.Run(logitsFunction, batch.Input, size, (logits, b, c) => Seed(logits, b, c, batch.Labels), out int classes, batch.PositionMask);
        Accumulate(size);
        // The exact Fisher of C > 2 classes: one more backward per further class c (seed √p_c·(e_c − p)); their output
        // gradients add to G, their (identical) inputs are not counted again in A.
        for (int c = 1; fisher == FisherKind.Exact && classes > 2 && c < classes; c++)
        {
            int column = c;
            probes.Run(logitsFunction, batch.Input, size, (logits, b, k) => ExactSeed(logits, b, k, column), out _, batch.PositionMask);
            using var timing = LaplacePhaseTimer.Measure(LaplacePhase.Factors);
            for (int k = 0; k < matrices.Count; k++)
            {
                RequireFinite(matrices[k].OutputGradients, matrices[k].Name, "output gradients", Examples);
                if (diagonal) AddSquaredGradients(k, size);
                else AddOutputRows(k);
            }
        }
        Examples += size;
    }

    private void Accumulate(int size)
    {
        using var timing = LaplacePhaseTimer.Measure(LaplacePhase.Factors);
        Array.Clear(inputGramReady);
        for (int k = 0; k < matrices.Count; k++)
        {
            var m = matrices[k];
            // Checked here, where the layer is known, rather than deep in the factor algebra: a NaN or ∞ logit (e.g.
            // diverged weights) makes the curvature of this matrix non-finite.
            RequireFinite(m.Inputs, m.Name, "input activations", Examples);
            RequireFinite(m.OutputGradients, m.Name, "output gradients", Examples);
            if (diagonal) AddSquaredGradients(k, size);
            else
            {
                AddInputRows(k);
                AddOutputRows(k);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AddSquaredGradients(int k, int size)
    {
        var m = matrices[k];
        var gradient = new double[m.Out * m.Width];
        var sum = diagonals[k];
        for (int n = 0; n < size; n++)
        {
            m.ExampleGradient(n, gradient);
            for (int i = 0; i < gradient.Length; i++) sum[i] += gradient[i] * gradient[i];
        }
    }

    /// <summary>Seed √p_c·(e_c − p) per row: Σ_c of their outer products is diag p − p pᵀ, the exact Fisher at the logits.</summary>
    private static float[] ExactSeed(float[] logits, int batch, int classes, int column)
    {
        var seed = new float[batch * classes];
        var p = new double[classes];
        for (int n = 0; n < batch; n++)
        {
            Softmax(logits.AsSpan(n * classes, classes), p);
            double root = Math.Sqrt(p[column]);
            for (int c = 0; c < classes; c++) seed[n * classes + c] = (float)(root * ((c == column ? 1 : 0) - p[c]));
        }
        return seed;
    }

    private static double Softmax(ReadOnlySpan<float> logits, Span<double> p)
    {
        double max = double.NegativeInfinity;
        foreach (float v in logits) max = Math.Max(max, v);
        double total = 0;
        for (int c = 0; c < logits.Length; c++) total += p[c] = Math.Exp(logits[c] - max);
        for (int c = 0; c < logits.Length; c++) p[c] /= total;
        return max + Math.Log(total);   // log Σ exp
    }

    /// <summary>
    /// Exact factors take the batch's XᵀX from float GEMMs into a reused buffer (shared with an earlier matrix that saw
    /// the same input rows); low-rank factors fold the rows themselves.
    /// </summary>
    private void AddInputRows(int k)
    {
        var m = matrices[k];
        if (inputFactors[k].IsLowRank) inputFactors[k].AddRows(m.Inputs, m.Rows);
        else inputFactors[k].AddGram(SharedInputGram(k), m.Rows);
    }

    private void AddOutputRows(int k)
    {
        var m = matrices[k];
        if (outputFactors[k].IsLowRank)
        {
            outputFactors[k].AddRows(m.OutputGradients, m.Rows);
            return;
        }
        SinglePrecisionGram(m.OutputGradients, m.Rows, m.Out, outputGrams[k]);
        outputFactors[k].AddGram(outputGrams[k], m.Rows);
    }

    /// <summary>
    /// The input Gram of exact matrix <paramref name="k"/>: an earlier matrix's when it saw exactly the same input rows in
    /// this batch (q_proj's and v_proj's lora_A read the same normalised hidden states), computed once; else its own.
    /// </summary>
    private double[] SharedInputGram(int k)
    {
        var m = matrices[k];
        int twin = -1;
        for (int j = 0; j < k && twin < 0; j++)
        {
            var other = matrices[j];
            if (!inputFactors[j].IsLowRank && other.Width == m.Width && other.Rows == m.Rows && other.Inputs.SequenceEqual(m.Inputs)) twin = j;
        }
        // A twin in every batch means identical factor sums (the same Grams added in the same order): one eigenbasis.
        inputTwin[k] = inputTwin[k] == int.MinValue || inputTwin[k] == twin ? twin : -1;
        return InputGram(twin < 0 ? k : twin);
    }

    private double[] InputGram(int k)
    {
        var m = matrices[k];
        if (!inputGramReady[k]) SinglePrecisionGram(m.Inputs, m.Rows, m.Width, inputGrams[k]);
        inputGramReady[k] = true;
        return inputGrams[k];
    }

    /// <summary>
    /// XᵀX of a batch's rows (width wide) into <paramref name="gram"/>, with the precision of
    /// <see cref="KroneckerFactorAccumulator.SinglePrecisionGram(ReadOnlySpan{float}, int, int)"/> (one float GEMM per
    /// <see cref="KroneckerFactorAccumulator.SinglePrecisionChunkRows"/> rows, the chunks summed in double, then the
    /// triangles averaged) at less cost: each chunk is added by a vectorised widening add and the symmetrisation is done
    /// once per batch instead of once per chunk in scalar, strided code, which took 60 % of a 64-wide Gram's time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void SinglePrecisionGram(ReadOnlySpan<float> rows, int rowCount, int width, Span<double> gram)
    {
        int size = width * width;
        Span<float> chunk = gemmScratch.AsSpan(0, size);
        gram.Clear();
        for (int start = 0; start < rowCount; start += KroneckerFactorAccumulator.SinglePrecisionChunkRows)
        {
            int count = Math.Min(KroneckerFactorAccumulator.SinglePrecisionChunkRows, rowCount - start);
            var x = rows.Slice(start * width, count * width);
            Kernels.Gemm.Sgemm(true, false, width, width, count, 1f, x, width, x, width, 0f, chunk, width);
            AddWidened(chunk, gram);
        }
        for (int i = 0; i < width; i++)
        {
            for (int j = i + 1; j < width; j++) gram[i * width + j] = gram[j * width + i] = 0.5 * (gram[i * width + j] + gram[j * width + i]);   // a GEMM's triangles may round differently
        }
    }

    /// <summary>sum += values, each float widened to double (exact) a vector at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddWidened(ReadOnlySpan<float> values, Span<double> sum)
    {
        int i = 0, width = Vector<float>.Count;
        for (; i <= values.Length - width; i += width)
        {
            Vector.Widen(new Vector<float>(values[i..]), out var low, out var high);
            (new Vector<double>(sum[i..]) + low).CopyTo(sum[i..]);
            (new Vector<double>(sum[(i + width / 2)..]) + high).CopyTo(sum[(i + width / 2)..]);
        }
        for (; i < values.Length; i++) sum[i] += values[i];
    }

    private float[] Seed(float[] logits, int batch, int classes, int[] labels)
    {
        if (Classes != 0 && Classes != classes) throw new ArgumentException($"Laplace-LoRA: the logits function returned {classes} classes, earlier batches had {Classes}");
        Classes = classes;
        var seed = new float[batch * classes];
        var p = new double[classes];
        for (int n = 0; n < batch; n++)
        {
            int label = LaplaceLora.CheckLabel(labels[n], classes, Examples + n);
            double logNormalizer = Softmax(logits.AsSpan(n * classes, classes), p);
            LogLikelihood += logits[n * classes + label] - logNormalizer;
            if (fisher == FisherKind.Exact)
            {
                if (classes == 2)
                {
                    double root = Math.Sqrt(p[0] * p[1]);   // diag p − p pᵀ = p₀p₁·d dᵀ, d = (−1, 1)
                    seed[n * 2] = (float)-root;
                    seed[n * 2 + 1] = (float)root;
                }
                else
                {
                    double root = Math.Sqrt(p[0]);           // first of the C seeds √p_c·(e_c − p); Add runs the others
                    for (int c = 0; c < classes; c++) seed[n * classes + c] = (float)(root * ((c == 0 ? 1 : 0) - p[c]));
                }
                continue;
            }
            int target = fisher == FisherKind.Empirical ? label : SampleClass(p);
            for (int c = 0; c < classes; c++) seed[n * classes + c] = (float)(p[c] - (c == target ? 1 : 0));
        }
        return seed;
    }

    private int SampleClass(ReadOnlySpan<double> p)
    {
        double u = random.NextUniform(), cumulative = 0;
        for (int c = 0; c < p.Length - 1; c++)
        {
            cumulative += p[c];
            if (u < cumulative) return c;
        }
        return p.Length - 1;
    }

    public ILaplacePosteriorBlock[] BuildBlocks(CurvatureKind kind, double temperature)
    {
        if (Examples == 0) throw new ArgumentException("Laplace-LoRA: no training batches were given");
        using var timing = LaplacePhaseTimer.Measure(LaplacePhase.Eigen);
        double dataCount = Examples / temperature;
        var blocks = new ILaplacePosteriorBlock[matrices.Count];
        for (int k = 0; k < matrices.Count; k++)
        {
            var m = matrices[k];
            var mean = m.Values();
            if (kind == CurvatureKind.Diagonal)
            {
                var curvature = diagonals[k];
                for (int i = 0; i < curvature.Length; i++)
                {
                    curvature[i] /= Examples;
                    if (!double.IsFinite(curvature[i])) throw new InvalidOperationException($"Laplace-LoRA: the diagonal Fisher of '{m.Name}' is not finite at index {i} (row {i / m.Width}, column {i % m.Width})");
                }
                blocks[k] = new DiagonalLaplace(m.Name, mean, curvature, dataCount);
            }
            else
            {
                // A = mean over all rows (positions); G = Σ g gᵀ / N (rows per example folded in): K-FAC-expand.
                var a = inputTwin[k] >= 0 && blocks[inputTwin[k]] is KfacLaplaceLayer twin ? twin.InputFactor : inputFactors[k].ToEigenbasis();
                var g = outputFactors[k].ToEigenbasis().Scale((double)outputFactors[k].SampleCount / Examples);
                RequireFinite(a.Values, m.Name, "input factor A");
                RequireFinite(g.Values, m.Name, "output-gradient factor G");
                blocks[k] = new KfacLaplaceLayer(m.Name, mean, g, a, dataCount);
            }
        }
        return blocks;
    }

    private static void RequireFinite(ReadOnlySpan<float> values, string name, string what, int firstExample)
    {
        if (AllFinite(values)) return;   // one vectorised pass; only a failing batch is searched for the value to report
        foreach (var v in values)
        {
            if (!float.IsFinite(v))
                throw new InvalidOperationException($"Laplace-LoRA: the curvature of '{name}' is not finite: its {what} contain {v} in the batch starting at example {firstExample}");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool AllFinite(ReadOnlySpan<float> values)
    {
        var zero = Vector<float>.Zero;
        var product = Vector<float>.Zero;
        int i = 0;
        for (; i <= values.Length - Vector<float>.Count; i += Vector<float>.Count) product += new Vector<float>(values[i..]) * zero;
        bool finite = Vector.EqualsAll(product, product);   // v·0 is NaN exactly when v is NaN or ±∞, and NaN stays in the sum
        for (; i < values.Length; i++) finite &= float.IsFinite(values[i]);
        return finite;
    }

    private static void RequireFinite(ReadOnlySpan<double> values, string name, string factor)
    {
        foreach (var v in values)
        {
            if (!double.IsFinite(v)) throw new InvalidOperationException($"Laplace-LoRA: the {factor} of '{name}' has a non-finite eigenvalue");
        }
    }
}
