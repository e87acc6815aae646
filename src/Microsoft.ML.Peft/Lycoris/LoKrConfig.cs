using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Lycoris;

/// <summary>
/// LoKr settings (PEFT's <c>LoKrConfig</c>, peft_type "LOKR"): the keys of <see cref="LycorisConfig"/> plus
/// decompose_both (false), decompose_factor (-1) and rank_dropout_scale (false); each targeted linear layer becomes a
/// <see cref="LoKrLinear"/>.
/// </summary>
public sealed class LoKrConfig : LycorisConfig
{
    /// <inheritdoc/>
    public override string PeftType => "LOKR";

    /// <summary>decompose_both: also write W1 as a rank-r product when r is small against its dimensions (default false).</summary>
    public bool DecomposeBoth { get; set; }

    /// <summary>decompose_factor: the divisor <see cref="LoKrFactorization.Factorize"/> aims for (-1: near the square root).</summary>
    public int DecomposeFactor { get; set; } = -1;

    /// <summary>rank_dropout_scale: divide the rank-dropout mask by its mean (default false).</summary>
    public bool RankDropoutScale { get; set; }

    private protected override string MethodName => "LoKr";

    private protected override Type CreateLayerType => typeof(LoKrLinear);

    private protected override void WriteFields(Dictionary<string, object?> fields) => WriteSharedFields(fields, f =>
    {
        f["decompose_both"] = DecomposeBoth;
        f["decompose_factor"] = DecomposeFactor;
        f["rank_dropout_scale"] = RankDropoutScale;
    });

    private protected override void ReadFields(ConfigFields fields)
    {
        ReadSharedFields(fields);
        DecomposeBoth = fields.Bool("decompose_both", false);
        DecomposeFactor = fields.Int("decompose_factor", -1);
        RankDropoutScale = fields.Bool("rank_dropout_scale", false);
    }

    private protected override LycorisLinear CreateLayer(LinearLayer baseLayer) => new LoKrLinear(baseLayer);

    private protected override void AddAdapter(LycorisLinear layer, string adapterName, int rank, double alpha, Generator generator) =>
        ((LoKrLinear)layer).UpdateLayer(adapterName, rank, alpha, RankDropout, ModuleDropout, InitWeights, DecomposeBoth, DecomposeFactor, RankDropoutScale, generator);
}
