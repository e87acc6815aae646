using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Reft;

/// <summary>
/// The ReFT adapters of one backbone, attached under its <c>interventions</c> slot (<see cref="IResidualStreamHost"/>):
/// after each block the active adapter edits the hidden state at its chosen layers and positions. One adapter is
/// active at a time; an intervention edits activations, so there is nothing to merge into weights.
/// </summary>
public sealed class ReftLayer : SingleActiveTunerLayer, IResidualStreamHook
{
    /// <inheritdoc/>
    protected override string AdapterKind => "ReFT adapter";

    /// <inheritdoc/>
    protected override string MergeRefusal => "a ReFT intervention edits hidden states at chosen positions and cannot be merged into the model's weights";

    internal void Add(string adapterName, ReftConfig config, int hidden, Generator generator)
    {
        ThrowIfExists(adapterName);
        AddAdapter(adapterName, new ReftAdapter(config, hidden, generator));
    }

    /// <summary>An adapter's interventions with their module names ("layer_2_first", "layer_2_last" or "layer_2").</summary>
    public IReadOnlyList<(string Name, ReftIntervention Intervention)> Interventions(string adapterName) => Reft(adapterName).Interventions;

    /// <inheritdoc/>
    public Tensor AfterBlock(int layer, Tensor hidden, ResidualStreamContext context)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(context);
        return Current is ReftAdapter adapter ? adapter.Apply(layer, hidden, context, IsTraining) : hidden;
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName)
    {
        foreach (var (name, intervention) in Reft(adapterName).Interventions)
        {
            yield return ($"{name}.rotate_layer.householder", intervention.RotateLayer.Householder);
            yield return ($"{name}.learned_source.weight", intervention.LearnedSource.Weight);
            yield return ($"{name}.learned_source.bias", intervention.LearnedSource.Bias!);
        }
    }

    private ReftAdapter Reft(string adapterName) => (ReftAdapter)Adapter(adapterName);
}
