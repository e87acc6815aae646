using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Ensembles;

/// <summary>
/// SVGD-LoRA: n LoRA adapters ("particles", each with its own copy of modules_to_save such as a classification head)
/// on one frozen base, trained jointly by Stein variational gradient descent (<see cref="SvgdKernel"/>) so that they
/// approximate samples of the posterior over the adapter weights; the predictive is the mean of their softmax
/// outputs. With <see cref="SvgdOptions.Repulsive"/> off it is a deep ensemble of independently trained adapters,
/// and with one particle it is ordinary (MAP) training, step for step and bit for bit.
/// </summary>
/// <remarks>
/// A step runs each particle's forward and backward (the base is shared; only the active adapter differs), gathers
/// the flattened parameters and gradients, replaces each particle's gradients by its SVGD direction and lets that
/// particle's optimizer step. Cost: n forward/backward passes plus O(n²·d) for the kernel, d = adapter size.
/// </remarks>
public sealed class SvgdLora
{
    private readonly List<Tensor[]> particleParameters = [];
    private readonly List<Optimizer> optimizers = [];

    private SvgdLora(PeftModel peft, SvgdOptions options, IReadOnlyList<string> names)
    {
        Peft = peft;
        Options = options;
        ParticleNames = names;
    }

    /// <summary>The model with every particle's adapter.</summary>
    public PeftModel Peft { get; }

    /// <summary>The settings.</summary>
    public SvgdOptions Options { get; }

    /// <summary>Adapter names of the particles ("particle_0", …).</summary>
    public IReadOnlyList<string> ParticleNames { get; }

    /// <summary>The kernel bandwidth H of the last step (1 before the first, and with one particle).</summary>
    public double LastBandwidth { get; private set; } = 1;

    /// <summary>
    /// Injects <see cref="SvgdOptions.Particles"/> LoRA adapters described by <paramref name="config"/> into
    /// <paramref name="model"/> (each drawing its own random initialisation from <paramref name="generator"/>) and
    /// creates one optimizer per particle with <paramref name="optimizerFactory"/> (e.g. <c>ps =&gt; new AdamW(ps, 2e-3)</c>).
    /// </summary>
    public static SvgdLora Create(Module model, LoraConfig config, SvgdOptions options, Func<IReadOnlyList<Tensor>, Optimizer> optimizerFactory, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(optimizerFactory);
        options.Validate();
        var names = Enumerable.Range(0, options.Particles).Select(i => $"particle_{i}").ToArray();
        var peft = PeftModel.Inject(model, config, names[0], generator);
        foreach (var name in names.Skip(1)) peft.AddAdapter(name, config.Clone());
        var svgd = new SvgdLora(peft, options, names);
        foreach (var name in names)
        {
            peft.SetAdapter(name);
            var parameters = peft.TrainableParameters().Select(p => p.Parameter).ToArray();
            svgd.particleParameters.Add(parameters);
            svgd.optimizers.Add(optimizerFactory(parameters));
        }
        peft.SetAdapter(names[0]);
        return svgd;
    }

    /// <summary>The trainable tensors of particle <paramref name="index"/> (its LoRA matrices and modules_to_save copies).</summary>
    public IReadOnlyList<Tensor> ParticleParameters(int index) => particleParameters[index];

    /// <summary>Sets every particle optimizer's learning rate (call before <see cref="Step"/> to follow a schedule).</summary>
    public void SetLearningRate(double learningRate)
    {
        foreach (var optimizer in optimizers) optimizer.LearningRate = learningRate;
    }

    /// <summary>
    /// One SVGD step on a batch: <paramref name="meanLoss"/> computes the batch's mean loss with the currently active
    /// adapter (it is called once per particle). Returns the particles' mean loss. Leaves the first particle active.
    /// </summary>
    public double Step(Func<Tensor> meanLoss)
    {
        ArgumentNullException.ThrowIfNull(meanLoss);
        int n = ParticleNames.Count;
        var theta = new double[n][];
        var gradients = new double[n][];
        double lossSum = 0;
        for (int i = 0; i < n; i++)
        {
            Peft.SetAdapter(ParticleNames[i]);
            optimizers[i].ZeroGrad();
            var loss = meanLoss();
            lossSum += loss.ToArray()[0];
            loss.Backward();
            theta[i] = Flatten(particleParameters[i], gradient: false);
            gradients[i] = Flatten(particleParameters[i], gradient: true);
        }

        var directions = new double[n][];
        if (Options.Repulsive)
        {
            LastBandwidth = SvgdKernel.Directions(theta, gradients, Options.Temperature / Math.Max(Options.DataCount, 1), directions, Options.Bandwidth);
        }
        else
        {
            gradients.CopyTo(directions, 0);
        }

        for (int i = 0; i < n; i++)
        {
            Peft.SetAdapter(ParticleNames[i]);
            Unflatten(directions[i], particleParameters[i]);
            optimizers[i].Step();
        }
        Peft.SetAdapter(ParticleNames[0]);
        return lossSum / n;
    }

    /// <summary>
    /// The ensemble's predictive for one batch: the mean over particles of softmax(<paramref name="logits"/>()) (the
    /// function runs the model with the active adapter and returns [batch, classes] logits), as
    /// <see cref="EnsemblePrediction"/>. Runs without recording gradients; leaves the first particle active.
    /// </summary>
    public EnsemblePrediction Predict(Func<Tensor> logits)
    {
        ArgumentNullException.ThrowIfNull(logits);
        var members = new List<float[]>();
        int classes = 0;
        using (Autograd.NoGrad())
        {
            foreach (var name in ParticleNames)
            {
                Peft.SetAdapter(name);
                var output = logits();
                classes = output.ShapeArray()[^1];
                members.Add(output.Softmax().ToArray());
            }
        }
        Peft.SetAdapter(ParticleNames[0]);
        return EnsemblePrediction.FromMemberProbabilities(members, classes);
    }

    private static double[] Flatten(Tensor[] parameters, bool gradient)
    {
        var result = new double[parameters.Sum(p => p.Count)];
        int offset = 0;
        foreach (var p in parameters)
        {
            var source = gradient ? p.Grad : p;
            if (source is null)
            {
                offset += p.Count;   // no gradient reached it: a zero gradient
                continue;
            }
            var values = source.ToArray();
            for (int i = 0; i < values.Length; i++) result[offset + i] = values[i];
            offset += p.Count;
        }
        return result;
    }

    private static void Unflatten(double[] direction, Tensor[] parameters)
    {
        int offset = 0;
        foreach (var p in parameters)
        {
            if (p.Grad is { } grad)
            {
                var target = grad.AsSpan<float>();
                for (int i = 0; i < target.Length; i++) target[i] = (float)direction[offset + i];
            }
            offset += p.Count;
        }
    }
}
