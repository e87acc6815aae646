using Microsoft.ML.Peft.NN;

namespace Microsoft.ML.Peft.Models;

/// <summary>
/// A backbone whose layer loop calls a <see cref="IResidualStreamHook"/> after every block: <see cref="DecoderModel"/>
/// (Llama family, GPT-2, GPT-NeoX) and <see cref="EncoderModel"/> (BERT, RoBERTa, DistilBERT). The hook lives in the
/// backbone's tree under <c>interventions</c>, so its parameters are trained, counted and saved with the model.
/// </summary>
public interface IResidualStreamHost
{
    /// <summary>Width of the hidden states the hook edits.</summary>
    int HiddenSize { get; }

    /// <summary>Number of blocks (valid layer indices are 0 .. NumBlocks − 1).</summary>
    int NumBlocks { get; }

    /// <summary>The attached hook, or null.</summary>
    IResidualStreamHook? ResidualStreamHook { get; }

    /// <summary>Puts <paramref name="module"/> (an <see cref="IResidualStreamHook"/>, or an empty module to detach) under <c>interventions</c>.</summary>
    void SetResidualStreamModule(Module module);
}
