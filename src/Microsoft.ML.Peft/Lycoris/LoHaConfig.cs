using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Lycoris;

/// <summary>
/// LoHa settings (PEFT's <c>LoHaConfig</c>, peft_type "LOHA"): the keys of <see cref="LycorisConfig"/>; each targeted
/// linear layer becomes a <see cref="LoHaLinear"/>.
/// </summary>
public sealed class LoHaConfig : LycorisConfig
{
    /// <inheritdoc/>
    public override string PeftType => "LOHA";

    private protected override string MethodName => "LoHa";

    private protected override Type CreateLayerType => typeof(LoHaLinear);

    private protected override void WriteFields(Dictionary<string, object?> fields) => WriteSharedFields(fields, _ => { });

    private protected override void ReadFields(ConfigFields fields) => ReadSharedFields(fields);

    private protected override LycorisLinear CreateLayer(LinearLayer baseLayer) => new LoHaLinear(baseLayer);

    private protected override void AddAdapter(LycorisLinear layer, string adapterName, int rank, double alpha, Generator generator) =>
        ((LoHaLinear)layer).UpdateLayer(adapterName, rank, alpha, RankDropout, ModuleDropout, InitWeights, generator);
}
