using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Training;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Ensembles;

/// <summary>
/// Several adapters of one <see cref="PeftModel"/> trained together by <see cref="TrainingLoop"/> (SVGD particles or
/// deep-ensemble members): one optimizer covers every particle's parameters — AdamW is element-wise, so that is n
/// independent AdamW optimizers — while each micro-batch runs once per particle with that particle's adapter active.
/// Before the optimizer step each particle's gradient is clipped on its own and, for SVGD, replaced by its Stein
/// direction. With one particle every step is the loop's ordinary step, bit for bit.
/// </summary>
internal sealed class ParticleSet
{
    private readonly Tensor[][] parameters;
    private readonly HashSet<Tensor>[] members;
    private readonly double[][] theta;
    private readonly double[][] gradients;
    private readonly double[][] directions;

    /// <param name="peft">The model holding one adapter per particle.</param>
    /// <param name="names">The particles' adapter names.</param>
    /// <param name="repulsive">True for SVGD, false for independent members.</param>
    /// <param name="repulsionScale">T/N, the kernel gradient's weight (see <see cref="SvgdKernel"/>).</param>
    /// <param name="bandwidth">Fixed RBF bandwidth, or null for the median heuristic.</param>
    public ParticleSet(PeftModel peft, IReadOnlyList<string> names, bool repulsive, double repulsionScale, double? bandwidth)
    {
        Peft = peft;
        Names = names;
        Repulsive = repulsive;
        RepulsionScale = repulsionScale;
        Bandwidth = bandwidth;
        parameters = new Tensor[names.Count][];
        for (int i = 0; i < names.Count; i++)
        {
            peft.SetAdapter(names[i]);
            parameters[i] = peft.TrainableParameters().Select(p => p.Parameter).ToArray();
            if (i > 0 && parameters[i].Length != parameters[0].Length)
                throw new InvalidOperationException($"particle '{names[i]}' has {parameters[i].Length} trainable tensors but '{names[0]}' has {parameters[0].Length}");
        }
        members = parameters.Select(ps => new HashSet<Tensor>(ps, ReferenceEqualityComparer.Instance)).ToArray();
        // Each particle must own its tensors: a shared one (LoRA bias "all"/"lora_only" trains the base's biases for
        // every adapter) would get n different directions in one gradient.
        for (int i = 1; i < names.Count; i++)
        {
            if (parameters[i].FirstOrDefault(members[0].Contains) is { } shared)
                throw new ArgumentException($"particles '{names[0]}' and '{names[i]}' share the trainable tensor {shared}; particles need adapters that train only their own tensors (LoRA bias \"none\")", nameof(names));
        }
        int size = parameters[0].Sum(p => p.Count);
        theta = names.Select(_ => new double[size]).ToArray();
        gradients = names.Select(_ => new double[size]).ToArray();
        directions = new double[names.Count][];
        Activate(0);
    }

    public PeftModel Peft { get; }

    public IReadOnlyList<string> Names { get; }

    public int Count => Names.Count;

    public bool Repulsive { get; }

    public double RepulsionScale { get; }

    public double? Bandwidth { get; }

    /// <summary>The kernel bandwidth of the last SVGD step (1 before the first and with one particle).</summary>
    public double LastBandwidth { get; private set; } = 1;

    /// <summary>
    /// Makes particle <paramref name="index"/>'s adapter the one the forward uses, keeping every particle's
    /// parameters trainable (PEFT's set_adapter freezes inactive adapters; the shared optimizer must see them all).
    /// </summary>
    public void Activate(int index)
    {
        Peft.SetAdapter(Names[index]);
        foreach (var ps in parameters)
        {
            foreach (var p in ps) p.RequiresGrad = true;
        }
    }

    /// <summary>
    /// <paramref name="model"/> predicting with the particles' mean probabilities: its logits are log p̄, so the softmax
    /// that scoring applies gives p̄ back. One particle: the model itself.
    /// </summary>
    public ISequenceClassifier MeanPrediction(ISequenceClassifier model) => Count == 1 ? model : new MeanOfParticles(model, this);

    /// <summary>
    /// Clips each particle's gradient by its own global norm (in the optimizer's parameter order, as the loop clips a
    /// single model) and, for SVGD with several particles, replaces the gradients by the Stein directions. Returns the
    /// root mean square of the particles' norms before clipping (the one norm for one particle).
    /// </summary>
    public double PrepareStep(IEnumerable<Tensor> optimizerOrder, double? maxNorm)
    {
        var order = optimizerOrder.ToList();
        double squares = 0;
        for (int i = 0; i < Count; i++)
        {
            var own = order.Where(members[i].Contains).ToList();
            double norm = maxNorm is { } max ? GradientClipping.ClipGradNorm(own, max) : GradientClipping.GlobalNorm(own);
            squares += norm * norm;
        }
        if (Repulsive && Count > 1) SteinDirections();
        return Math.Sqrt(squares / Count);
    }

    private void SteinDirections()
    {
        for (int i = 0; i < Count; i++)
        {
            Flatten(parameters[i], theta[i], gradient: false);
            Flatten(parameters[i], gradients[i], gradient: true);
        }
        LastBandwidth = SvgdKernel.Directions(theta, gradients, RepulsionScale, directions, Bandwidth);
        for (int i = 0; i < Count; i++) Unflatten(directions[i], parameters[i]);
    }

    private static void Flatten(Tensor[] tensors, double[] target, bool gradient)
    {
        int offset = 0;
        foreach (var p in tensors)
        {
            var source = gradient ? p.Grad : p;
            if (source is null) target.AsSpan(offset, p.Count).Clear();   // no gradient reached it: zero
            else
            {
                var values = source.AsReadOnlySpan<float>();
                for (int i = 0; i < values.Length; i++) target[offset + i] = values[i];
            }
            offset += p.Count;
        }
    }

    /// <summary>Writes the direction into the gradients (a tensor no gradient reached stays put, as the optimizer skips it).</summary>
    private static void Unflatten(double[] direction, Tensor[] tensors)
    {
        int offset = 0;
        foreach (var p in tensors)
        {
            if (p.Grad is { } grad)
            {
                var target = grad.AsSpan<float>();
                for (int i = 0; i < target.Length; i++) target[i] = (float)direction[offset + i];
            }
            offset += p.Count;
        }
    }

    private sealed class MeanOfParticles(ISequenceClassifier model, ParticleSet particles) : ISequenceClassifier
    {
        public Module Module => model.Module;

        public int NumLabels => model.NumLabels;

        public IReadOnlyList<Generator> RandomStreams => model.RandomStreams;

        public Tensor Forward(TokenBatch batch)
        {
            var mean = new double[batch.BatchSize * NumLabels];
            for (int i = 0; i < particles.Count; i++)
            {
                particles.Activate(i);
                var logits = model.Forward(batch).ToArray();
                for (int r = 0; r < batch.BatchSize; r++)
                {
                    var p = ClassifierInference.Softmax(logits.AsSpan(r * NumLabels, NumLabels));
                    for (int c = 0; c < NumLabels; c++) mean[r * NumLabels + c] += p[c];
                }
            }
            particles.Activate(0);
            var result = new float[mean.Length];
            for (int k = 0; k < mean.Length; k++) result[k] = (float)Math.Log(mean[k] / particles.Count);
            return Tensor.From(result, batch.BatchSize, NumLabels);
        }
    }
}
