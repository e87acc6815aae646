using System.Runtime.CompilerServices;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// One matrix under the posterior (a LoRA A or B, or a head's weight with optional bias). While <see cref="Recording"/>,
/// each use records its input rows x and, once backward has run, the gradient of the loss with respect to its output
/// (set by the probe node that computed the product: <see cref="ProbedLoraLayer"/> for A and B, <see cref="Apply"/> for a
/// head). <see cref="Capture"/> then copies both into reused row buffers, example by example. With a bias the parameters
/// are [W | b] (out × (in+1)) and input rows get a trailing 1.
/// </summary>
internal sealed class ProbedMatrix(string name, Tensor weight, Tensor? bias = null)
{
    private readonly List<ProbeRecord> records = [];
    private int recordCount;
    private float[] ownInputs = [], inputs = [], outputGradients = [];
    private int[] exampleRowStart = [0], nextRow = [];

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

    /// <summary>Examples of the last <see cref="Capture"/>.</summary>
    public int Batch { get; private set; }

    /// <summary>Rows of the last <see cref="Capture"/> (real positions of all examples and all uses).</summary>
    public int Rows { get; private set; }

    /// <summary>Captured input rows (<see cref="Rows"/>×<see cref="Width"/>, trailing 1 with a bias), example by example.</summary>
    public ReadOnlySpan<float> Inputs => inputs.AsSpan(0, Rows * Width);

    /// <summary>Captured output-gradient rows (<see cref="Rows"/>×<see cref="Out"/>), in the order of <see cref="Inputs"/>.</summary>
    public ReadOnlySpan<float> OutputGradients => outputGradients.AsSpan(0, Rows * Out);

    /// <summary>First captured row of each example, plus the total (<see cref="Batch"/> + 1 entries): example n owns rows [start[n], start[n + 1]).</summary>
    public ReadOnlySpan<int> ExampleRowStart => exampleRowStart.AsSpan(0, Batch + 1);

    /// <summary>
    /// Starts the record of one use of this matrix on <paramref name="input"/> ([batch, ..., In]); the probe node fills its
    /// <see cref="ProbeRecord.OutputGradient"/> in backward. Null while not recording. Record objects are reused.
    /// </summary>
    public ProbeRecord? Record(Tensor input)
    {
        if (!Recording) return null;
        if (recordCount == records.Count) records.Add(new ProbeRecord());
        var record = records[recordCount++];
        record.Input = input;
        record.OutputGradient = null;
        return record;
    }

    /// <summary>Drops the recorded tensors (they belong to the scope of the pass that made them).</summary>
    public void Clear()
    {
        for (int i = 0; i < recordCount; i++) records[i].Input = records[i].OutputGradient = null;
        recordCount = 0;
    }

    /// <summary>
    /// y = x·Wᵀ (+ b), the head's product. While recording it is ONE autograd node whose backward keeps ∂L/∂y for the
    /// K-FAC rows and passes ∂L/∂x = (∂L/∂y)·W on; its input list holds an anchor leaf so the node is recorded even when
    /// x is not part of the graph (every parameter is frozen while probing).
    /// </summary>
    public Tensor Apply(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (!Recording || !Autograd.IsGradEnabled) return x.Linear(Weight, Bias);
        Tensor y;
        using (Autograd.NoGrad()) y = x.Linear(Weight, Bias);
        var record = Record(x)!;
        var w = Weight;
        var node = Autograd.Record("probed_linear", y, [x, ProbeNodes.Anchor], (node, g) =>
        {
            record.OutputGradient = g;
            if (node.NeedsGrad(0)) node.AccumulateGrad(0, ProbeNodes.RowProduct(g, w));
        });
        node.SaveForBackward(x, w);
        return y;
    }

    /// <summary>
    /// Whether every use of this matrix read the same input tensors as <paramref name="other"/>'s (q_proj's and v_proj's
    /// lora_A read the same normalised hidden states), so its captured input rows would be identical.
    /// </summary>
    public bool ReadsSameInputsAs(ProbedMatrix other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.recordCount != recordCount || other.In != In || other.Width != Width) return false;
        for (int k = 0; k < recordCount; k++)
        {
            if (!ReferenceEquals(records[k].Input, other.records[k].Input)) return false;
        }
        return true;
    }

    /// <summary>
    /// Copies the recorded inputs and output gradients into the row buffers (several uses in one forward are
    /// concatenated per example); the buffers grow to the largest batch and are reused, so a fit allocates nothing here
    /// after its first batches. <paramref name="positionMask"/> (batch×T, 1 = real token, 0 = padding; empty = no
    /// padding): a use that sees T positions per example keeps only the real ones, so padding never enters the K-FAC
    /// factors or the row counts (a padded position's activation is not data, and its output gradient is zero for a model
    /// that masks it). Uses with another number of positions per example (a pooled head: one) are kept whole.
    /// <paramref name="sameInputs"/>: a matrix captured before in this pass that <see cref="ReadsSameInputsAs"/> this one;
    /// its input rows are then shared instead of copied again.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // a fit's hot loop, run a few hundred times: see FisherCollector
    public void Capture(int batch, ReadOnlySpan<int> positionMask = default, ProbedMatrix? sameInputs = null)
    {
        if (recordCount == 0) throw new InvalidOperationException($"Laplace-LoRA: '{Name}' was not used by the forward pass; the logits function must run the PEFT model");
        int maskLength = positionMask.IsEmpty ? 0 : positionMask.Length / batch;
        if (exampleRowStart.Length < batch + 1) exampleRowStart = new int[batch + 1];
        if (nextRow.Length < batch) nextRow = new int[batch];
        var start = exampleRowStart.AsSpan(0, batch + 1);
        start.Clear();
        for (int k = 0; k < recordCount; k++)
        {
            var input = records[k].Input!;
            if (input.Rank == 0 || input.Size(0) != batch) throw new InvalidOperationException($"Laplace-LoRA: '{Name}' saw input {input.ShapeString}, whose first axis is not the batch ({batch})");
            int t = input.Count / (batch * In);
            for (int n = 0; n < batch; n++) start[n + 1] += t == maskLength ? CountReal(positionMask.Slice(n * t, t)) : t;
        }
        for (int n = 0; n < batch; n++) start[n + 1] += start[n];
        Batch = batch;
        Rows = start[batch];
        bool copyInputs = sameInputs is null || !ReadsSameInputsAs(sameInputs) || sameInputs.Rows != Rows;
        if (copyInputs) EnsureCapacity(ref ownInputs, Rows * Width);
        inputs = copyInputs ? ownInputs : sameInputs!.inputs;
        EnsureCapacity(ref outputGradients, Rows * Out);
        var next = nextRow.AsSpan(0, batch);
        start[..batch].CopyTo(next);
        for (int k = 0; k < recordCount; k++) CopyRows(records[k], batch, maskLength, positionMask, next, copyInputs);
    }

    /// <summary>Copies one use's rows, a run of consecutive real positions at a time (padding sits at the ends).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CopyRows(ProbeRecord record, int batch, int maskLength, ReadOnlySpan<int> positionMask, Span<int> next, bool copyInputs)
    {
        var input = record.Input!;
        int t = input.Count / (batch * In);
        bool masked = t == maskLength;
        var x = Contiguous(input).AsReadOnlySpan<float>();
        // No gradient: this use's output did not reach the logits, so its gradient is zero.
        var g = record.OutputGradient is { } gradient ? Contiguous(gradient).AsReadOnlySpan<float>() : default;
        for (int n = 0; n < batch; n++)
        {
            int r = 0;
            while (r < t)
            {
                int source = n * t + r;
                if (masked && positionMask[source] == 0)
                {
                    r++;
                    continue;
                }
                int end = r + 1;
                while (end < t && (!masked || positionMask[n * t + end] != 0)) end++;
                int count = end - r, dest = next[n];
                next[n] += count;
                r = end;
                var target = outputGradients.AsSpan(dest * Out, count * Out);
                if (g.IsEmpty) target.Clear();
                else g.Slice(source * Out, count * Out).CopyTo(target);
                if (!copyInputs) continue;
                if (Bias is null)
                {
                    x.Slice(source * In, count * In).CopyTo(inputs.AsSpan(dest * Width));
                    continue;
                }
                for (int i = 0; i < count; i++)
                {
                    x.Slice((source + i) * In, In).CopyTo(inputs.AsSpan((dest + i) * Width, In));
                    inputs[(dest + i) * Width + In] = 1;
                }
            }
        }
    }

    private static Tensor Contiguous(Tensor t) => t.IsContiguous ? t : t.Contiguous();

    private static void EnsureCapacity(ref float[] buffer, int length)
    {
        // A quarter of headroom: batches differ in padded length, so the largest seen so far is usually not the last.
        if (buffer.Length < length) buffer = GC.AllocateUninitializedArray<float>(length + length / 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int CountReal(ReadOnlySpan<int> mask)
    {
        int count = 0;
        foreach (int m in mask) if (m != 0) count++;
        return count;
    }

    /// <summary>
    /// <see cref="ExampleGradient(int, Span{double})"/> in single precision by one GEMM Gᵀ·X over the example's captured
    /// rows (the predictive's hot path; float is ample for a variance).
    /// </summary>
    public void ExampleGradient(int n, Span<float> destination)
    {
        int start = exampleRowStart[n], count = exampleRowStart[n + 1] - start;
        if (count == 0)
        {
            destination.Clear();
            return;
        }
        Kernels.Gemm.Sgemm(true, false, Out, Width, count, 1f, outputGradients.AsSpan(start * Out, count * Out), Out,
            inputs.AsSpan(start * Width, count * Width), Width, 0f, destination, Width);
    }

    /// <summary>
    /// Gradient of example n's seeded loss wrt [W | b] (out×Width, row-major): Σ_t g_t x_tᵀ over the example's positions.
    /// Examples do not interact in the forward, so row n of the batch's output gradient is example n's own gradient.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void ExampleGradient(int n, Span<double> destination)
    {
        destination.Clear();
        for (int row = exampleRowStart[n]; row < exampleRowStart[n + 1]; row++)
        {
            ReadOnlySpan<float> x = inputs.AsSpan(row * Width, Width);
            ReadOnlySpan<float> g = outputGradients.AsSpan(row * Out, Out);
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

/// <summary>One use of a <see cref="ProbedMatrix"/> in a forward pass: its input and, after backward, ∂L/∂(its output).</summary>
internal sealed class ProbeRecord
{
    public Tensor? Input { get; set; }

    /// <summary>Set by the probe node's backward; null when no gradient reached the output.</summary>
    public Tensor? OutputGradient { get; set; }
}
