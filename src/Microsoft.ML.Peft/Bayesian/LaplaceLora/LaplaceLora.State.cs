using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Bayesian;

public sealed partial class LaplaceLora
{
    /// <summary>Whether the probed layers are installed in the model (they are after <see cref="Fit"/>).</summary>
    internal bool ProbesAttached => probes.IsAttached;

    /// <summary>
    /// Puts the original LoRA layers back while keeping the posterior (a pipeline shares the model with the classifier
    /// that saves the adapter and scores plain logits); <see cref="AttachProbes"/> re-installs them for a predictive.
    /// </summary>
    internal void DetachProbes() => probes.Detach();

    /// <summary>Installs the probed layers until the returned scope is disposed (then detaches them if they were detached before).</summary>
    internal ProbeScope AttachProbes()
    {
        bool wasAttached = probes.IsAttached;
        probes.Attach();
        return new ProbeScope(wasAttached ? null : probes);
    }

    /// <summary>Everything that defines the fitted posterior besides the MAP weights, which stay in the model.</summary>
    internal LaplacePosteriorState ExportState() => new(Options, DataCount, Classes, TrainLogLikelihood,
        blocks.Select(b => b switch
        {
            KfacLaplaceLayer k => new LaplaceBlockState(b.Name, b.PriorPrecision, null, k.OutputFactor, k.InputFactor),
            DiagonalLaplace d => new LaplaceBlockState(b.Name, b.PriorPrecision, d.MeanCurvature, null, null),
            _ => throw new NotSupportedException($"Laplace-LoRA: block '{b.Name}' of type {b.GetType().Name} cannot be saved"),
        }).ToArray());

    /// <summary>
    /// Rebuilds a posterior saved by <see cref="ExportState"/> on a model holding the same MAP weights (e.g. reloaded from
    /// the saved adapter): the blocks are constructed from the same numbers, so every predictive is bit-identical. The
    /// probed layers are left detached.
    /// </summary>
    /// <exception cref="InvalidDataException">The model's LoRA matrices do not match the saved blocks (names or shapes).</exception>
    internal static LaplaceLora Restore(PeftModel model, Func<Tensor, Tensor> logitsFunction, LaplacePosteriorState state, string source)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(state);
        var options = state.Options;
        var probes = new LoraProbeSet(model, options.HeadModules);
        try
        {
            var matrices = options.Curvature == CurvatureKind.LastLayer ? [probes.Matrices[^1]] : probes.Matrices.ToList();
            probes.Recorded = matrices;
            if (matrices.Count != state.Blocks.Count)
                throw new InvalidDataException($"{source}: the posterior has {state.Blocks.Count} blocks but the model has {matrices.Count} LoRA/head matrices under it");
            double dataCount = state.DataCount / options.Temperature;
            var blocks = new ILaplacePosteriorBlock[matrices.Count];
            for (int k = 0; k < blocks.Length; k++)
            {
                var (m, saved) = (matrices[k], state.Blocks[k]);
                if (m.Name != saved.Name) throw new InvalidDataException($"{source}: block {k} is '{saved.Name}' but the model's matrix is '{m.Name}'");
                var mean = m.Values();
                blocks[k] = saved.Diagonal is { } diagonal
                    ? new DiagonalLaplace(m.Name, mean, diagonal, dataCount)
                    : saved.OutputFactor!.Size == m.Out && saved.InputFactor!.Size == m.Width
                        ? new KfacLaplaceLayer(m.Name, mean, saved.OutputFactor, saved.InputFactor, dataCount)
                        : throw new InvalidDataException($"{source}: the factors of '{m.Name}' are {saved.OutputFactor.Size}×{saved.InputFactor!.Size}, the matrix is {m.Out}×{m.Width}");
                if (blocks[k].ParameterCount != mean.Length) throw new InvalidDataException($"{source}: block '{m.Name}' has {blocks[k].ParameterCount} parameters, the matrix {mean.Length}");
                blocks[k].PriorPrecision = saved.PriorPrecision;
            }
            var restored = new LaplaceLora(model, logitsFunction, probes, matrices, blocks, state.DataCount, state.Classes, state.TrainLogLikelihood, options);
            probes.Detach();
            return restored;
        }
        catch
        {
            probes.Dispose();
            throw;
        }
    }

    /// <summary>Detaches the probed layers on dispose when the scope attached them.</summary>
    internal readonly struct ProbeScope(LoraProbeSet? attachedHere) : IDisposable
    {
        public void Dispose() => attachedHere?.Detach();
    }
}

/// <summary>A fitted posterior without the MAP weights: options, data count, classes, MAP log-likelihood, blocks.</summary>
internal sealed record LaplacePosteriorState(LaplaceLoraOptions Options, int DataCount, int Classes, double TrainLogLikelihood, IReadOnlyList<LaplaceBlockState> Blocks);

/// <summary>One block: K-FAC factors (G side out, A side width) or a diagonal mean Fisher, and its prior precision.</summary>
internal sealed record LaplaceBlockState(string Name, double PriorPrecision, double[]? Diagonal, KroneckerFactorEigenbasis? OutputFactor, KroneckerFactorEigenbasis? InputFactor);
