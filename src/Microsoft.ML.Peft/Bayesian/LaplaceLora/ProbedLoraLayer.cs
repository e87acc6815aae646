using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// Stands in for a <see cref="LoraLinear"/> in its model slot while Laplace-LoRA needs per-matrix inputs and output
/// gradients. It computes the same eval-mode forward from the LoRA layer's own tensors,
/// y = base(x) + Σ_active s·(x·Aᵀ)·Bᵀ, with A and B applied through <see cref="ProbedMatrix.Apply"/>.
/// </summary>
/// <remarks>
/// Why a stand-in and not an engine hook: LoraLinear multiplies by the A and B weights directly (it never calls the
/// sub-layers' Forward), and the engine has no "retain grad" for intermediate tensors. Recomputing the forward here
/// from the layer's inputs, as the task allows, needs no engine or LoRA change. Dropout is not applied: the model
/// must be in evaluation mode (checked by <see cref="LaplaceLora.Fit"/>).
/// </remarks>
internal sealed class ProbedLoraLayer : LinearLayer
{
    private readonly LoraLinear lora;
    private readonly List<(ProbedMatrix A, ProbedMatrix B, float Scaling)> adapters = [];

    public ProbedLoraLayer(string path, LoraLinear lora)
    {
        this.lora = lora;
        foreach (var adapter in lora.ActiveAdapters)
        {
            if (lora.MergedAdapters.Contains(adapter))
                throw new InvalidOperationException($"Laplace-LoRA: adapter '{adapter}' of '{path}' is merged into the base weight; unmerge it first so its A and B can be probed");
            adapters.Add((new ProbedMatrix($"{path}.lora_A.{adapter}", lora.LoraA(adapter)),
                new ProbedMatrix($"{path}.lora_B.{adapter}", lora.LoraB(adapter)), lora.Scaling(adapter)));
        }
    }

    public LoraLinear Original => lora;

    /// <summary>The probed matrices: per active adapter, A then B.</summary>
    public IEnumerable<ProbedMatrix> Matrices => adapters.SelectMany(a => (ProbedMatrix[])[a.A, a.B]);

    public override int InFeatures => lora.InFeatures;

    public override int OutFeatures => lora.OutFeatures;

    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var result = lora.Base.Forward(input);
        // Same order of operations as LoraLinear: rank-r product, scaling, then B.
        foreach (var (a, b, scaling) in adapters) result = result.Add(b.Apply(a.Apply(input).Mul(scaling)));
        return result;
    }
}

/// <summary>
/// One matrix under the posterior (a LoRA A or B, or a head's weight with optional bias): applies y = x·Wᵀ (+ b) and,
/// while <see cref="Recording"/>, adds a zero leaf tensor z (requires grad) so that after backward z.Grad = ∂L/∂y;
/// records (x, z) per call. With a bias the parameters are [W | b] (out × (in+1)) and input rows get a trailing 1.
/// </summary>
internal sealed class ProbedMatrix(string name, Tensor weight, Tensor? bias = null)
{
    private readonly List<(Tensor Input, Tensor Probe)> records = [];

    public string Name { get; } = name;
    public Tensor Weight { get; } = weight;
    public Tensor? Bias { get; } = bias;
    public int Out => Weight.Size(0);
    public int In => Weight.Size(1);

    /// <summary>Columns of the parameter matrix: in, plus one for a bias.</summary>
    public int Width => In + (Bias is null ? 0 : 1);
    public bool Recording { get; set; }

    /// <summary>[W | b] row-major (out × <see cref="Width"/>).</summary>
    public double[] Values()
    {
        var w = Weight.ToArray();
        var b = Bias?.ToArray();
        var values = new double[Out * Width];
        for (int o = 0; o < Out; o++)
        {
            for (int i = 0; i < In; i++) values[o * Width + i] = w[o * In + i];
            if (b is not null) values[o * Width + In] = b[o];
        }
        return values;
    }

    /// <summary>Overwrites W (and b) from [W | b] row-major (no gradient recorded; the caller holds a scope).</summary>
    public void SetValues(ReadOnlySpan<double> values)
    {
        var w = new float[Out * In];
        var b = new float[Out];
        for (int o = 0; o < Out; o++)
        {
            for (int i = 0; i < In; i++) w[o * In + i] = (float)values[o * Width + i];
            if (Bias is not null) b[o] = (float)values[o * Width + In];
        }
        using var noGrad = Autograd.NoGrad();
        Weight.CopyFrom_(Tensor.From(w, Out, In));
        Bias?.CopyFrom_(Tensor.From(b, Out));
    }

    /// <summary>
    /// Captured input rows (rows×Width, trailing 1 with a bias) and output-gradient rows (rows×out), example by example:
    /// example n owns rows [<see cref="ExampleRowStart"/>[n], ExampleRowStart[n + 1]). Padding positions are left out.
    /// </summary>
    public float[] Inputs { get; private set; } = [];
    public float[] OutputGradients { get; private set; } = [];
    public int Rows { get; private set; }

    /// <summary>First captured row of each example, plus the total (batch + 1 entries).</summary>
    public int[] ExampleRowStart { get; private set; } = [0];

    public Tensor Apply(Tensor x)
    {
        var y = x.Linear(Weight, Bias);
        if (!Recording) return y;
        var probe = Tensor.Zeros(y.ShapeArray());
        probe.RequiresGrad = true;
        records.Add((x.Detach(), probe));
        return y.Add(probe);
    }

    public void Clear() => records.Clear();

    /// <summary>
    /// Copies the recorded tensors out of the scope (several calls in one forward are concatenated per example).
    /// <paramref name="positionMask"/> (batch×T, 1 = real token, 0 = padding; null = no padding): a call that sees T
    /// positions per example keeps only the real ones, so padding never enters the K-FAC factors or the row counts (a
    /// padded position's activation is not data, and its output gradient is zero for a model that masks it). Calls with
    /// another number of positions per example (a pooled head: one) are kept whole.
    /// </summary>
    public void Capture(int batch, ReadOnlySpan<int> positionMask = default)
    {
        if (records.Count == 0) throw new InvalidOperationException($"Laplace-LoRA: '{Name}' was not used by the forward pass; the logits function must run the PEFT model");
        int maskLength = positionMask.IsEmpty ? 0 : positionMask.Length / batch;
        var start = new int[batch + 1];
        foreach (var (input, _) in records)
        {
            if (input.Size(0) != batch) throw new InvalidOperationException($"Laplace-LoRA: '{Name}' saw input {input.ShapeString}, whose first axis is not the batch ({batch})");
            int t = input.Count / (batch * In);
            for (int n = 0; n < batch; n++) start[n + 1] += t == maskLength ? CountReal(positionMask.Slice(n * t, t)) : t;
        }
        for (int n = 0; n < batch; n++) start[n + 1] += start[n];
        ExampleRowStart = start;
        Rows = start[batch];
        Inputs = new float[Rows * Width];
        OutputGradients = new float[Rows * Out];
        var next = (int[])start.Clone();   // next free row of each example
        foreach (var (input, probe) in records)
        {
            int t = input.Count / (batch * In);
            bool masked = t == maskLength;
            var x = input.ToArray();
            var g = probe.Grad?.ToArray() ?? new float[probe.Count];   // no gradient: this output did not reach the logits
            for (int n = 0; n < batch; n++)
            {
                for (int r = 0; r < t; r++)
                {
                    if (masked && positionMask[n * t + r] == 0) continue;
                    int dest = next[n]++;
                    Array.Copy(x, (n * t + r) * In, Inputs, dest * Width, In);
                    if (Bias is not null) Inputs[dest * Width + In] = 1;
                    Array.Copy(g, (n * t + r) * Out, OutputGradients, dest * Out, Out);
                }
            }
        }
    }

    private static int CountReal(ReadOnlySpan<int> mask)
    {
        int count = 0;
        foreach (int m in mask) if (m != 0) count++;
        return count;
    }

    /// <summary>
    /// <see cref="ExampleGradient"/> in single precision by one GEMM Gᵀ·X over the example's captured rows (the
    /// predictive's hot path; float is ample for a variance).
    /// </summary>
    public void ExampleGradient(int n, Span<float> destination)
    {
        int start = ExampleRowStart[n], count = ExampleRowStart[n + 1] - start;
        if (count == 0)
        {
            destination.Clear();
            return;
        }
        Kernels.Gemm.Sgemm(true, false, Out, Width, count, 1f, OutputGradients.AsSpan(start * Out, count * Out), Out,
            Inputs.AsSpan(start * Width, count * Width), Width, 0f, destination, Width);
    }

    /// <summary>
    /// Gradient of example n's seeded loss wrt [W | b] (out×Width, row-major): Σ_t g_t x_tᵀ over the example's positions.
    /// Examples do not interact in the forward, so row n of the batch's output gradient is example n's own gradient.
    /// </summary>
    public void ExampleGradient(int n, Span<double> destination)
    {
        destination.Clear();
        for (int row = ExampleRowStart[n]; row < ExampleRowStart[n + 1]; row++)
        {
            ReadOnlySpan<float> x = Inputs.AsSpan(row * Width, Width);
            ReadOnlySpan<float> g = OutputGradients.AsSpan(row * Out, Out);
            for (int o = 0; o < Out; o++)
            {
                double go = g[o];
                if (go == 0) continue;
                Span<double> target = destination.Slice(o * Width, Width);
                for (int i = 0; i < Width; i++) target[i] += go * x[i];
            }
        }
    }
}

/// <summary>
/// Stands in for a plain <see cref="Linear"/> head (e.g. a sequence classifier's output layer) so its weight and bias
/// get a posterior block too; computes exactly x·Wᵀ + b through <see cref="ProbedMatrix.Apply"/>.
/// </summary>
internal sealed class ProbedHeadLayer(string path, Linear head) : LinearLayer
{
    public Linear Original { get; } = head;

    public ProbedMatrix Matrix { get; } = new(path, head.Weight, head.Bias);

    public override int InFeatures => Original.InFeatures;

    public override int OutFeatures => Original.OutFeatures;

    public override Tensor Forward(Tensor input) => Matrix.Apply(input);
}
