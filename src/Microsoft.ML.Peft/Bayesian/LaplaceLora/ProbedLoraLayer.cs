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
/// One LoRA matrix W [out, in] under the posterior: applies y = x·Wᵀ and, while <see cref="Recording"/>, adds a zero
/// leaf tensor z (requires grad) so that after backward z.Grad = ∂L/∂y; records (x, z) per call.
/// </summary>
internal sealed class ProbedMatrix(string name, Tensor weight)
{
    private readonly List<(Tensor Input, Tensor Probe)> records = [];

    public string Name { get; } = name;
    public Tensor Weight { get; } = weight;
    public int Out => Weight.Size(0);
    public int In => Weight.Size(1);
    public bool Recording { get; set; }

    /// <summary>Captured input rows (rows×in) and output-gradient rows (rows×out); rows = B·T (T positions per example).</summary>
    public float[] Inputs { get; private set; } = [];
    public float[] OutputGradients { get; private set; } = [];
    public int Rows { get; private set; }
    public int RowsPerExample { get; private set; }

    public Tensor Apply(Tensor x)
    {
        var y = x.Linear(Weight);
        if (!Recording) return y;
        var probe = Tensor.Zeros(y.ShapeArray());
        probe.RequiresGrad = true;
        records.Add((x.Detach(), probe));
        return y.Add(probe);
    }

    public void Clear() => records.Clear();

    /// <summary>Copies the recorded tensors out of the scope (several calls in one forward are concatenated per example).</summary>
    public void Capture(int batch)
    {
        if (records.Count == 0) throw new InvalidOperationException($"Laplace-LoRA: '{Name}' was not used by the forward pass; the logits function must run the PEFT model");
        int perExample = 0;
        foreach (var (input, _) in records)
        {
            if (input.Size(0) != batch) throw new InvalidOperationException($"Laplace-LoRA: '{Name}' saw input {input.ShapeString}, whose first axis is not the batch ({batch})");
            perExample += input.Count / (batch * In);
        }
        RowsPerExample = perExample;
        Rows = batch * perExample;
        Inputs = new float[Rows * In];
        OutputGradients = new float[Rows * Out];
        int offset = 0;   // rows already taken per example from earlier calls
        foreach (var (input, probe) in records)
        {
            int t = input.Count / (batch * In);
            var x = input.ToArray();
            var g = probe.Grad?.ToArray() ?? new float[probe.Count];   // no gradient: this output did not reach the logits
            for (int n = 0; n < batch; n++)
            {
                int dest = n * perExample + offset;
                Array.Copy(x, n * t * In, Inputs, dest * In, t * In);
                Array.Copy(g, n * t * Out, OutputGradients, dest * Out, t * Out);
            }
            offset += t;
        }
    }

    /// <summary>
    /// Gradient of example n's seeded loss wrt W (out×in, row-major): Σ_t g_t x_tᵀ over the example's positions.
    /// Examples do not interact in the forward, so row n of the batch's output gradient is example n's own gradient.
    /// </summary>
    public void ExampleGradient(int n, Span<double> destination)
    {
        destination.Clear();
        for (int t = 0; t < RowsPerExample; t++)
        {
            int row = n * RowsPerExample + t;
            ReadOnlySpan<float> x = Inputs.AsSpan(row * In, In);
            ReadOnlySpan<float> g = OutputGradients.AsSpan(row * Out, Out);
            for (int o = 0; o < Out; o++)
            {
                double go = g[o];
                if (go == 0) continue;
                Span<double> target = destination.Slice(o * In, In);
                for (int i = 0; i < In; i++) target[i] += go * x[i];
            }
        }
    }
}
