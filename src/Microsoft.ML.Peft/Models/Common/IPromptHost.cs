using Microsoft.ML.Peft.NN;

namespace Microsoft.ML.Peft.Models;

/// <summary>
/// A backbone that accepts a prompt-learning module: <see cref="DecoderModel"/> and the encoder backbones. The module
/// lives in the backbone's tree under <c>prompt_encoder</c> (so its parameters are trained and counted with the model).
/// </summary>
public interface IPromptHost
{
    /// <summary>Sizes a prompt method needs.</summary>
    PromptGeometry PromptGeometry { get; }

    /// <summary>The attached source, or null.</summary>
    IPromptSource? PromptSource { get; }

    /// <summary>Puts <paramref name="module"/> (an <see cref="IPromptSource"/>, or an empty module to detach) under <c>prompt_encoder</c>.</summary>
    void SetPromptModule(Module module);
}
