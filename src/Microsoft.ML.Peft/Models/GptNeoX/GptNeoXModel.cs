using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.GptNeoX;

/// <summary>HF <c>GPTNeoXModel</c> (Pythia): embed_in → emb_dropout → layers.N → final_layer_norm, partial rotary positions.</summary>
public sealed class GptNeoXModel : DecoderModel
{
    private readonly ModuleSlot<Embedding> embedIn;
    private readonly ModuleSlot<Dropout> embDropout;
    private readonly ModuleSlot<ModuleList<GptNeoXLayer>> layers;
    private readonly ModuleSlot<LayerNorm> finalLayerNorm;
    private readonly GptNeoXConfig config;
    private readonly Generator dropoutGenerator;

    /// <summary>A backbone for <paramref name="config"/> (placeholders until weights are bound).</summary>
    public GptNeoXModel(GptNeoXConfig config, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.RotaryDims % 2 != 0 || config.RotaryDims == 0)
            throw new ModelConfigException(config.SourcePath ?? "config.json", "rotary_pct",
                $"head_dim {config.HeadDim} × rotary_pct {config.RotaryPct} = {config.RotaryDims} rotary dimensions; must be even and positive");
        this.config = config;
        this.dropoutGenerator = dropoutGenerator;
        embedIn = RegisterModule("embed_in", Placeholder.Embedding(config.VocabSize, config.HiddenSize));
        embDropout = RegisterModule("emb_dropout", new Dropout((float)config.HiddenDropout, dropoutGenerator));
        layers = RegisterModule("layers", new ModuleList<GptNeoXLayer>(Enumerable.Range(0, config.NumHiddenLayers).Select(i => new GptNeoXLayer(config, i, dropoutGenerator))));
        finalLayerNorm = RegisterModule("final_layer_norm", new LayerNorm(config.HiddenSize, (float)config.LayerNormEps));
        Rotary = new RotaryEmbedding(config.RotaryDims, config.RotaryEmbBase, config.RopeScaling, config.MaxPositionEmbeddings);
    }

    /// <summary>The rotary tables (rotary_ndims = head_dim × rotary_pct features per head).</summary>
    public RotaryEmbedding Rotary { get; }

    /// <summary>The blocks.</summary>
    public ModuleList<GptNeoXLayer> Layers => layers.Module;

    /// <inheritdoc/>
    public override int HiddenSize => config.HiddenSize;

    /// <inheritdoc/>
    public override int NumLayers => config.NumHiddenLayers;

    /// <inheritdoc/>
    public override int KeyValueHeads => config.NumAttentionHeads;

    /// <inheritdoc/>
    public override int AttentionHeads => config.NumAttentionHeads;

    /// <inheritdoc/>
    public override int MaxPositionEmbeddings => config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    public override int HeadDim => config.HeadDim;

    /// <inheritdoc/>
    public override Embedding InputEmbeddings => embedIn.Module;

    private protected override IReadOnlyList<string> ResidualOutputProjections { get; } = ["dense", "dense_4h_to_h"];

    private protected override Tensor ForwardCore(Tensor inputsEmbeds, DecoderStep step, IList<Tensor>? hiddenStates)
    {
        var (cos, sin) = Rotary.Tables(step.PositionLimit);
        var x = embDropout.Module.Forward(inputsEmbeds);
        hiddenStates?.Add(x);
        var blocks = layers.Module;
        for (int i = 0; i < blocks.Count; i++)
        {
            var block = blocks[i];
            x = step.AfterBlock(i, RunBlock(block, x, step, dropoutGenerator, h => block.Forward(h, step, cos, sin)));
            hiddenStates?.Add(x);
        }
        return finalLayerNorm.Module.Forward(x);
    }
}
