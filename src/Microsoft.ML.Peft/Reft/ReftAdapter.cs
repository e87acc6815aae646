using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Reft;

/// <summary>
/// One ReFT adapter: the interventions of every chosen layer. With separate weights (pyreft's default when both
/// first and last positions are used) layer l has <c>layer_{l}_first</c> for the first positions and
/// <c>layer_{l}_last</c> for the last ones; with share_weights, or when only one group is used, a single
/// <c>layer_{l}</c> serves every chosen position.
/// </summary>
internal sealed class ReftAdapter : Module
{
    private readonly Dictionary<int, (ReftIntervention? First, ReftIntervention? Last)> byLayer = [];
    private readonly List<(string Name, ReftIntervention Intervention)> named = [];

    public ReftAdapter(ReftConfig config, int hidden, Generator generator)
    {
        Positions = ReftPositions.Parse(config.Positions);
        Dropout = (float)config.Dropout;
        DropoutGenerator = generator;
        bool shared = config.ShareWeights || Positions.First == 0 || Positions.Last == 0;
        foreach (int layer in config.Layers)
        {
            if (shared)
            {
                var one = Add($"layer_{layer}", config, hidden, generator);
                byLayer[layer] = (Positions.First > 0 ? one : null, Positions.Last > 0 ? one : null);
            }
            else
            {
                byLayer[layer] = (Add($"layer_{layer}_first", config, hidden, generator), Add($"layer_{layer}_last", config, hidden, generator));
            }
        }
    }

    public ReftPositions Positions { get; }

    public float Dropout { get; }

    public Generator DropoutGenerator { get; }

    /// <summary>Every intervention with its module name, in creation order.</summary>
    public IReadOnlyList<(string Name, ReftIntervention Intervention)> Interventions => named;

    /// <summary>
    /// h after block <paramref name="layer"/>: at the chosen positions Φ(h) (with dropout on the edited vector while
    /// training, as pyreft's <c>dropout(output)</c>), elsewhere h itself, bit for bit.
    /// </summary>
    public Tensor Apply(int layer, Tensor hidden, ResidualStreamContext context, bool training)
    {
        if (!byLayer.TryGetValue(layer, out var site) || context.Past > 0) return hidden;
        var masks = context.HookState as PositionMasks ?? new PositionMasks(Positions.Masks(context));
        context.HookState = masks;
        if (site.First is not null && ReferenceEquals(site.First, site.Last))
            return Tensor.Where(masks.Either, Edited(site.First, hidden, training), hidden);
        if (site.Last is not null) hidden = Tensor.Where(masks.Last, Edited(site.Last, hidden, training), hidden);
        if (site.First is not null) hidden = Tensor.Where(masks.First, Edited(site.First, hidden, training), hidden);
        return hidden;
    }

    private Tensor Edited(ReftIntervention intervention, Tensor hidden, bool training) =>
        intervention.Forward(hidden).Dropout(Dropout, DropoutGenerator, training);

    private ReftIntervention Add(string name, ReftConfig config, int hidden, Generator generator)
    {
        var intervention = new ReftIntervention(config.InterventionType, config.LowRankDimension, hidden, generator);
        RegisterModule(name, intervention);
        named.Add((name, intervention));
        return intervention;
    }

    /// <summary>The masks of one forward, computed at the first intervened layer and reused by the others.</summary>
    private sealed class PositionMasks
    {
        public PositionMasks((Tensor First, Tensor Last) masks)
        {
            First = masks.First;
            Last = masks.Last;
            var either = masks.First.AsReadOnlySpan<int>().ToArray();
            var last = masks.Last.AsReadOnlySpan<int>();
            for (int i = 0; i < either.Length; i++) either[i] |= last[i];
            Either = Tensor.FromInt32(either, masks.First.ShapeArray());
        }

        public Tensor First { get; }

        public Tensor Last { get; }

        public Tensor Either { get; }
    }
}
