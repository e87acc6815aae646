using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Reft;

/// <summary>
/// ReFT — representation fine-tuning (Wu et al., 2024; the pyreft library): the model stays frozen and learned
/// low-rank interventions edit the residual stream after chosen blocks at chosen token positions. LoReFT:
/// Φ(h) = h + Rᵀ(W·h + b − R·h) with R ∈ ℝ^{r×d} of orthonormal rows (<see cref="HouseholderRotation"/>); DiReFT:
/// Φ(h) = h + Rᵀ(W·h + b).
/// </summary>
/// <remarks>
/// <para>peft_type "REFT" is this library's own: Hugging Face PEFT has no ReFT method (pyreft saves its interventions in
/// its own format). Field names follow pyreft where it has them: layers, component (only "block_output": the output of
/// the whole block, before the next one), low_rank_dimension, positions ("f1+l1"), share_weights, dropout; plus
/// intervention_type ("loreft" / "direft") and act_fn (only null = pyreft's default "linear").</para>
/// <para>Trainable parameters: r·(2d + 1) per intervention; layers × (2 when both first and last positions are used
/// and share_weights is false, else 1) interventions. Saved keys: "base_model.model.&lt;backbone&gt;.interventions.layer_{l}[_first|_last].rotate_layer.householder"
/// [r, d], "….learned_source.weight" [r, d], "….learned_source.bias" [r].</para>
/// <para>Positions count the real tokens of each row (attention mask 1), so right-padded training batches and
/// left-padded generation prompts are both handled; see <see cref="ReftPositions"/> for rows that are too short. During
/// generation only the prompt forward is edited (later single-token steps continue from the cache untouched), as
/// pyreft intervenes on prompt positions only.</para>
/// </remarks>
public sealed class ReftConfig : PeftConfig
{
    /// <summary>The only component supported: the block's output (pyreft's "block_output").</summary>
    public const string BlockOutput = "block_output";

    /// <inheritdoc/>
    public override string PeftType => "REFT";

    /// <summary>layers: 0-based indices of the blocks whose output is edited (required, distinct).</summary>
    public IList<int> Layers { get; set; } = [];

    /// <summary>component: where in the block (only "block_output").</summary>
    public string Component { get; set; } = BlockOutput;

    /// <summary>low_rank_dimension: r, rows of R (pyreft's default 4 is used when unset; must be ≤ the hidden size).</summary>
    public int LowRankDimension { get; set; } = 4;

    /// <summary>positions: pyreft's "f{p}+l{s}" (default "f1+l1").</summary>
    public string Positions { get; set; } = "f1+l1";

    /// <summary>share_weights: one intervention per layer for first and last positions (default false: one each).</summary>
    public bool ShareWeights { get; set; }

    /// <summary>dropout: intervention dropout on the edited vectors while training (pyreft's default 0).</summary>
    public double Dropout { get; set; }

    /// <summary>intervention_type: LoReFT (default) or DiReFT.</summary>
    public ReftInterventionType InterventionType { get; set; } = ReftInterventionType.Loreft;

    /// <summary>Interventions per adapter for the current settings.</summary>
    public int InterventionCount
    {
        get
        {
            var p = ReftPositions.Parse(Positions);
            return Layers.Count * (ShareWeights || p.First == 0 || p.Last == 0 ? 1 : 2);
        }
    }

    /// <summary>Trainable parameters of one adapter on a model of width <paramref name="hidden"/>: interventions × r·(2d + 1).</summary>
    public long TrainableParameterCount(int hidden) => (long)InterventionCount * LowRankDimension * (2L * hidden + 1);

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Layers is null || Layers.Count == 0) throw new PeftConfigException("layers must list at least one block index (e.g. [0, 1])");
        if (Layers.Any(l => l < 0)) throw new PeftConfigException($"layers [{string.Join(", ", Layers)}] holds a negative index");
        if (Layers.Distinct().Count() != Layers.Count) throw new PeftConfigException($"layers [{string.Join(", ", Layers)}] repeats a block");
        if (Component != BlockOutput) throw new PeftConfigException($"component '{Component}' is not supported; only '{BlockOutput}' (the output of the whole block)");
        if (LowRankDimension <= 0) throw new PeftConfigException($"low_rank_dimension must be a positive integer, got {LowRankDimension}");
        ReftPositions.Parse(Positions);
        if (!(Dropout >= 0 && Dropout < 1)) throw new PeftConfigException($"dropout must be in [0, 1), got {Dropout}");
        if (!Enum.IsDefined(InterventionType)) throw new PeftConfigException($"intervention_type {InterventionType} is not loreft or direft");
    }

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator)
    {
        var (path, host) = FindHost(model);
        if (Layers.FirstOrDefault(l => l >= host.NumBlocks, -1) is var bad and >= 0)
            throw new PeftConfigException($"layers [{string.Join(", ", Layers)}]: block {bad} does not exist; {host.GetType().Name} has {host.NumBlocks} blocks (0..{host.NumBlocks - 1})");
        if (LowRankDimension > host.HiddenSize)
            throw new PeftConfigException($"low_rank_dimension {LowRankDimension} exceeds {host.GetType().Name}'s hidden size {host.HiddenSize}: R cannot have more orthonormal rows than dimensions");
        if (host.ResidualStreamHook is ReftLayer existing)
        {
            existing.Add(adapterName, this, host.HiddenSize, generator);
        }
        else
        {
            var layer = new ReftLayer();
            layer.Add(adapterName, this, host.HiddenSize, generator);
            host.SetResidualStreamModule(layer);
        }
        return [(path.Length == 0 ? "" : path + ".") + "interventions"];
    }

    private static (string Path, IResidualStreamHost Host) FindHost(Module model)
    {
        foreach (var (name, module) in model.NamedModules())
        {
            if (module is IResidualStreamHost host) return (name, host);
        }
        throw new PeftConfigException($"REFT needs a transformer backbone with a residual-stream hook (BERT, RoBERTa, DistilBERT, Llama/Mistral/Qwen2, GPT-2, GPT-NeoX); {model.GetType().Name} has none");
    }

    private protected override void WriteFields(Dictionary<string, object?> fields)
    {
        fields["layers"] = Layers.Cast<object?>().ToList();
        fields["component"] = Component;
        fields["low_rank_dimension"] = LowRankDimension;
        fields["positions"] = Positions;
        fields["share_weights"] = ShareWeights;
        fields["dropout"] = Dropout;
        fields["intervention_type"] = InterventionType == ReftInterventionType.Loreft ? "loreft" : "direft";
        fields["act_fn"] = null;
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        Layers = fields.IntOrList("layers") ?? [];
        Component = fields.String("component") ?? BlockOutput;
        LowRankDimension = fields.Int("low_rank_dimension", 4);
        Positions = fields.String("positions") ?? "f1+l1";
        ShareWeights = fields.Bool("share_weights", false);
        Dropout = fields.Double("dropout", 0);
        InterventionType = fields.String("intervention_type") switch
        {
            null or "loreft" => ReftInterventionType.Loreft,
            "direft" => ReftInterventionType.Direft,
            var other => throw fields.Wrong("intervention_type", "\"loreft\" or \"direft\"", other),
        };
        if (fields.String("act_fn") is { } act && act != "linear")
            throw new PeftConfigException($"{fields.Source}: act_fn '{act}' is not supported; only null / \"linear\" (pyreft's default)");
    }
}
