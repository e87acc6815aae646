using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Llama;

/// <summary>
/// HF <c>LlamaModel</c> / <c>MistralModel</c> / <c>Qwen2Model</c>: embed_tokens → layers.N → norm, with rotary
/// positions (rope_scaling linear / dynamic / llama3) and grouped-query attention.
/// </summary>
public sealed class LlamaModel : DecoderModel
{
    private readonly ModuleSlot<Embedding> embedTokens;
    private readonly ModuleSlot<ModuleList<LlamaDecoderLayer>> layers;
    private readonly ModuleSlot<RMSNorm> norm;
    private readonly LlamaConfig config;
    private readonly Generator dropoutGenerator;

    /// <summary>A backbone for <paramref name="config"/> (placeholders until weights are bound).</summary>
    public LlamaModel(LlamaConfig config, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        this.config = config;
        this.dropoutGenerator = dropoutGenerator;
        embedTokens = RegisterModule("embed_tokens", Placeholder.Embedding(config.VocabSize, config.HiddenSize, config.PadTokenId));
        layers = RegisterModule("layers", new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, config.NumHiddenLayers).Select(i => new LlamaDecoderLayer(config, i, dropoutGenerator))));
        norm = RegisterModule("norm", new RMSNorm(config.HiddenSize, (float)config.RmsNormEps));
        Rotary = new RotaryEmbedding(config.HeadDim, config.RopeTheta, config.RopeScaling, config.MaxPositionEmbeddings);
    }

    /// <summary>The rotary tables (inverse frequencies after rope_scaling).</summary>
    public RotaryEmbedding Rotary { get; }

    /// <summary>The blocks.</summary>
    public ModuleList<LlamaDecoderLayer> Layers => layers.Module;

    /// <inheritdoc/>
    public override int HiddenSize => config.HiddenSize;

    /// <inheritdoc/>
    public override int NumLayers => config.NumHiddenLayers;

    /// <inheritdoc/>
    public override int KeyValueHeads => config.NumKeyValueHeads;

    /// <inheritdoc/>
    public override int AttentionHeads => config.NumAttentionHeads;

    /// <inheritdoc/>
    public override int MaxPositionEmbeddings => config.MaxPositionEmbeddings;

    /// <inheritdoc/>
    public override int HeadDim => config.HeadDim;

    /// <inheritdoc/>
    public override Embedding InputEmbeddings => embedTokens.Module;

    private protected override IReadOnlyList<string> ResidualOutputProjections { get; } = ["o_proj", "down_proj"];

    private protected override Tensor ForwardCore(Tensor inputsEmbeds, DecoderStep step, IList<Tensor>? hiddenStates)
    {
        var (cos, sin) = Rotary.Tables(step.PositionLimit);
        var x = inputsEmbeds;
        hiddenStates?.Add(x);
        var blocks = layers.Module;
        for (int i = 0; i < blocks.Count; i++)
        {
            var block = blocks[i];
            x = step.AfterBlock(i, RunBlock(block, x, step, dropoutGenerator, h => block.Forward(h, step, cos, sin)));
            hiddenStates?.Add(x);
        }
        return norm.Module.Forward(x);
    }
}
