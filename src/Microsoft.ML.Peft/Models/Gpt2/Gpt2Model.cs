using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Gpt2;

/// <summary>HF <c>GPT2Model</c>: wte[ids] + wpe[positions] → drop → h.N → ln_f (learned absolute positions, pre-LayerNorm).</summary>
public sealed class Gpt2Model : DecoderModel
{
    private readonly ModuleSlot<Embedding> wte;
    private readonly ModuleSlot<Embedding> wpe;
    private readonly ModuleSlot<Dropout> drop;
    private readonly ModuleSlot<ModuleList<Gpt2Block>> h;
    private readonly ModuleSlot<LayerNorm> lnF;
    private readonly Gpt2Config config;
    private readonly Generator dropoutGenerator;

    /// <summary>A backbone for <paramref name="config"/> (placeholders until weights are bound).</summary>
    public Gpt2Model(Gpt2Config config, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        this.config = config;
        this.dropoutGenerator = dropoutGenerator;
        wte = RegisterModule("wte", Placeholder.Embedding(config.VocabSize, config.NEmbd));
        wpe = RegisterModule("wpe", Placeholder.Embedding(config.NPositions, config.NEmbd));
        drop = RegisterModule("drop", new Dropout((float)config.EmbdPdrop, dropoutGenerator));
        h = RegisterModule("h", new ModuleList<Gpt2Block>(Enumerable.Range(0, config.NLayer).Select(i => new Gpt2Block(config, i, dropoutGenerator))));
        lnF = RegisterModule("ln_f", new LayerNorm(config.NEmbd, (float)config.LayerNormEpsilon));
    }

    /// <summary>The blocks.</summary>
    public ModuleList<Gpt2Block> Layers => h.Module;

    /// <inheritdoc/>
    public override int HiddenSize => config.NEmbd;

    /// <inheritdoc/>
    public override int NumLayers => config.NLayer;

    /// <inheritdoc/>
    public override int KeyValueHeads => config.NHead;

    /// <inheritdoc/>
    public override int AttentionHeads => config.NHead;

    /// <inheritdoc/>
    public override int MaxPositionEmbeddings => config.NPositions;

    /// <inheritdoc/>
    public override int HeadDim => config.HeadDim;

    /// <inheritdoc/>
    public override Embedding InputEmbeddings => wte.Module;

    private protected override IReadOnlyList<string> ResidualOutputProjections { get; } = ["c_proj"];

    private protected override Tensor ForwardCore(Tensor inputsEmbeds, DecoderStep step, IList<Tensor>? hiddenStates)
    {
        if (step.PositionLimit > config.NPositions)
            throw new ArgumentException($"position {step.PositionLimit - 1} is beyond n_positions = {config.NPositions}");
        var x = inputsEmbeds.Add(wpe.Module.Forward(step.Positions));
        x = drop.Module.Forward(x);
        hiddenStates?.Add(x);
        var blocks = h.Module;
        for (int i = 0; i < blocks.Count; i++)
        {
            var block = blocks[i];
            x = step.AfterBlock(i, RunBlock(block, x, step, dropoutGenerator, hidden => block.Forward(hidden, step)));
            hiddenStates?.Add(x);
        }
        return lnF.Module.Forward(x);
    }
}
