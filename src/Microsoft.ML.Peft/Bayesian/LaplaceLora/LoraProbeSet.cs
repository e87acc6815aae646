using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// Puts a <see cref="RecordingLinear"/> in place of every active LoRA A and B sub-layer of a <see cref="PeftModel"/>
/// (sharing the weight tensors), freezes all parameters while installed so backward passes leave no parameter
/// gradients behind, and runs forward + backward passes seeded by a caller-supplied ∂L/∂logits. Dispose restores the
/// original sub-layers and trainable flags.
/// </summary>
internal sealed class LoraProbeSet : IDisposable
{
    private readonly Module model;
    private readonly List<(string Path, Linear Original)> replaced = [];
    private readonly List<(Tensor Parameter, bool RequiresGrad)> flags = [];

    public LoraProbeSet(PeftModel peft)
    {
        ArgumentNullException.ThrowIfNull(peft);
        model = peft.Model;
        foreach (var (_, p) in model.NamedParameters()) flags.Add((p, p.RequiresGrad));
        var blocks = new List<ProbedMatrix>();
        foreach (var (path, layer) in peft.TunerLayers())
        {
            if (layer is not LoraLinear lora || !lora.AdaptersEnabled) continue;
            foreach (var adapter in lora.ActiveAdapters)
            {
                if (lora.MergedAdapters.Contains(adapter))
                    throw new InvalidOperationException($"Laplace-LoRA: adapter '{adapter}' of '{path}' is merged into the base weight; unmerge it first so its A and B can be probed");
                foreach (var side in (string[])["lora_A", "lora_B"])
                {
                    string subPath = $"{path}.{side}.{adapter}";
                    var original = (Linear)model.GetModule(subPath);
                    var recorder = new RecordingLinear(original.Weight);
                    model.ReplaceModule(subPath, recorder);
                    replaced.Add((subPath, original));
                    blocks.Add(new ProbedMatrix(subPath, recorder));
                }
            }
        }
        foreach (var (p, _) in flags) p.RequiresGrad = false;
        Matrices = blocks;
        if (blocks.Count == 0)
        {
            Dispose();
            throw new InvalidOperationException("Laplace-LoRA: the model has no active LoRA layers (no lora_A/lora_B matrices to put a posterior on)");
        }
    }

    /// <summary>The probed LoRA matrices in module order (A before B within a layer).</summary>
    public IReadOnlyList<ProbedMatrix> Matrices { get; }

    /// <summary>
    /// Forward <paramref name="input"/> through <paramref name="logitsFunction"/> (must give [B, C]), then backward with
    /// the seed ∂L/∂logits from <paramref name="makeSeed"/> (given the float logits, B, C); afterwards every matrix
    /// holds its inputs and output gradients (see <see cref="ProbedMatrix.Capture"/>). Returns the logits (B×C).
    /// </summary>
    public float[] Run(Func<Tensor, Tensor> logitsFunction, Tensor input, int expectedBatch, Func<float[], int, int, float[]> makeSeed, out int classes)
    {
        using var scope = TensorScope.Begin();
        foreach (var m in Matrices) { m.Recorder.Clear(); m.Recorder.Recording = true; }
        try
        {
            var logits = logitsFunction(input);
            if (logits.Rank != 2 || logits.Size(0) != expectedBatch)
                throw new ArgumentException($"Laplace-LoRA: the logits function returned {logits.ShapeString}; expected [batch = {expectedBatch}, classes]");
            classes = logits.Size(1);
            var values = logits.ToArray();
            var seed = makeSeed(values, expectedBatch, classes);
            logits.Backward(Tensor.From(seed, expectedBatch, classes));
            foreach (var m in Matrices) m.Capture(expectedBatch);
            return values;
        }
        finally
        {
            foreach (var m in Matrices) { m.Recorder.Recording = false; m.Recorder.Clear(); }
        }
    }

    public void Dispose()
    {
        for (int i = replaced.Count - 1; i >= 0; i--) model.ReplaceModule(replaced[i].Path, replaced[i].Original);
        replaced.Clear();
        foreach (var (p, requiresGrad) in flags) p.RequiresGrad = requiresGrad;
    }
}

/// <summary>One probed LoRA matrix W [out, in] and what the last <see cref="LoraProbeSet.Run"/> captured.</summary>
internal sealed class ProbedMatrix(string name, RecordingLinear recorder)
{
    public string Name { get; } = name;
    public RecordingLinear Recorder { get; } = recorder;
    public int Out => Recorder.OutFeatures;
    public int In => Recorder.InFeatures;

    /// <summary>Captured input rows (rows×in) and output-gradient rows (rows×out); rows = B·T (T positions per example).</summary>
    public float[] Inputs { get; private set; } = [];
    public float[] OutputGradients { get; private set; } = [];
    public int Rows { get; private set; }
    public int RowsPerExample { get; private set; }

    /// <summary>Copies the recorded tensors out of the scope (several forwards through the layer are concatenated per example).</summary>
    public void Capture(int batch)
    {
        var records = Recorder.Records;
        if (records.Count == 0) throw new InvalidOperationException($"Laplace-LoRA: '{Name}' was not used by the forward pass; the logits function must run the PEFT model");
        int perExample = 0;
        foreach (var (input, _) in records)
        {
            if (input.Size(0) != batch) throw new InvalidOperationException($"Laplace-LoRA: '{Name}' saw input {input.ShapeString}, whose first axis is not the batch ({batch})");
            perExample += checked(input.Count / (batch * In));
        }
        RowsPerExample = perExample;
        Rows = batch * perExample;
        Inputs = new float[Rows * In];
        OutputGradients = new float[Rows * Out];
        int offset = 0;   // rows already taken per example from earlier records
        foreach (var (input, probe) in records)
        {
            int t = input.Count / (batch * In);
            var x = input.ToArray();
            var g = probe.Grad?.ToArray() ?? new float[probe.Count];   // no gradient: the output did not reach the logits
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
