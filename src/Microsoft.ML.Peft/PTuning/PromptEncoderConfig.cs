using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.PromptTuning;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.PTuning;

/// <summary>How P-tuning reparameterises its prompt (PEFT's <c>PromptEncoderReparameterizationType</c>).</summary>
public enum PromptEncoderReparameterization
{
    /// <summary>"MLP": Linear → ReLU → Linear → ReLU → Linear.</summary>
    Mlp,

    /// <summary>"LSTM": a bidirectional LSTM, then Linear → ReLU → Linear.</summary>
    Lstm,
}

/// <summary>
/// P-tuning (Liu et al., 2021; PEFT's <c>PromptEncoderConfig</c>, peft_type "P_TUNING"): virtual input tokens
/// produced by a prompt encoder (MLP or bidirectional LSTM over a trainable embedding). After training the encoder is
/// replaced by the table it computes: PEFT saves that table as "prompt_embeddings" [n, token_dim], and loading gives
/// a plain lookup table.
/// </summary>
/// <remarks>
/// <para>Trainable parameters with h = encoder_hidden_size (default token_dim) and td = token_dim: MLP
/// n·td + (td·h + h) + (h·h + h) + (h·td + td); LSTM (encoder_num_layers = L) n·td + 2·[4h·td + 4h·h + 8h +
/// (L − 1)(4h·2h + 4h·h + 8h)] + (2h·2h + 2h) + (2h·td + td).</para>
/// <para>JSON keys: <see cref="PromptLearningConfig"/>'s plus encoder_reparameterization_type, encoder_hidden_size,
/// encoder_num_layers (LSTM only, default 2), encoder_dropout (only 0).</para>
/// </remarks>
public sealed class PromptEncoderConfig : PromptLearningConfig
{
    /// <inheritdoc/>
    public override string PeftType => "P_TUNING";

    /// <summary>encoder_reparameterization_type (default MLP).</summary>
    public PromptEncoderReparameterization ReparameterizationType { get; set; } = PromptEncoderReparameterization.Mlp;

    /// <summary>encoder_hidden_size; null → token_dim.</summary>
    public int? EncoderHiddenSize { get; set; }

    /// <summary>encoder_num_layers: LSTM layers (default 2; the MLP always has its three linears, as PEFT).</summary>
    public int EncoderNumLayers { get; set; } = 2;

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (EncoderHiddenSize is <= 0) throw new PeftConfigException($"encoder_hidden_size must be positive, got {EncoderHiddenSize}");
        if (EncoderNumLayers <= 0) throw new PeftConfigException($"encoder_num_layers must be positive, got {EncoderNumLayers}");
        if (!Enum.IsDefined(ReparameterizationType)) throw new PeftConfigException($"encoder_reparameterization_type {ReparameterizationType} is not MLP or LSTM");
    }

    private protected override bool IsPrefix => false;

    private protected override VirtualTokenEncoder CreateEncoder(IPromptHost host, Generator generator)
    {
        int td = TokenDim!.Value;
        EncoderHiddenSize ??= td;
        if (InferenceMode)
        {
            Tensor table;
            using (TensorScope.Untracked()) table = Tensor.Randn(generator, NumVirtualTokens, td);
            return new LookupTableEncoder(table, isPrefix: false);
        }
        return new PTuningEncoder(NumVirtualTokens, td, EncoderHiddenSize.Value, ReparameterizationType, EncoderNumLayers, generator);
    }

    private protected override void WriteFields(Dictionary<string, object?> fields)
    {
        WriteCommonFields(fields);
        fields["encoder_reparameterization_type"] = ReparameterizationType == PromptEncoderReparameterization.Lstm ? "LSTM" : "MLP";
        fields["encoder_hidden_size"] = EncoderHiddenSize;
        fields["encoder_num_layers"] = EncoderNumLayers;
        fields["encoder_dropout"] = 0.0;
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        ReadCommonFields(fields);
        string type = fields.String("encoder_reparameterization_type") ?? "MLP";
        ReparameterizationType = type switch
        {
            "MLP" => PromptEncoderReparameterization.Mlp,
            "LSTM" => PromptEncoderReparameterization.Lstm,
            _ => throw fields.Wrong("encoder_reparameterization_type", "\"MLP\" or \"LSTM\"", type),
        };
        EncoderHiddenSize = fields.NullableInt("encoder_hidden_size");
        EncoderNumLayers = fields.Int("encoder_num_layers", 2);
        double dropout = fields.Double("encoder_dropout", 0.0);
        if (dropout != 0.0) throw new PeftConfigException($"{fields.Source}: 'encoder_dropout' = {dropout} is not supported (dropout between LSTM layers is not implemented); only 0.0");
    }
}
