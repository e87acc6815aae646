using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Loading;

/// <summary>
/// Hugging Face's <c>_init_weights</c> for the module types the models use: Linear/Conv1D weights and Embedding rows
/// N(0, initializer_range²) (the padding row zeroed), biases 0, LayerNorm/RMSNorm weights 1 — drawn from the engine's
/// seeded <see cref="Generator"/>, parameter by parameter in state-dict order, so a seed fixes every value.
/// </summary>
internal static class WeightInitializer
{
    /// <summary><c>initializer_range</c> of any supported config.</summary>
    public static float InitializerRange(ModelConfig config) => (float)(config switch
    {
        BertConfig c => c.InitializerRange,
        DistilBertConfig c => c.InitializerRange,
        LlamaConfig c => c.InitializerRange,
        Gpt2Config c => c.InitializerRange,
        GptNeoXConfig c => c.InitializerRange,
        _ => 0.02,
    });

    /// <summary>Replaces each named parameter of <paramref name="model"/> by a freshly initialised float32 tensor.</summary>
    public static void Initialize(Module model, IEnumerable<string> parameterNames, float std, Generator generator)
    {
        foreach (string name in parameterNames)
        {
            int dot = name.LastIndexOf('.');
            var owner = dot < 0 ? model : model.GetModule(name[..dot]);
            string local = name[(dot + 1)..];
            var shape = model.GetParameter(name).ShapeArray();
            Tensor value;
            using (TensorScope.Untracked())
            {
                value = (owner, local) switch
                {
                    (LayerNorm or RMSNorm, "weight") => Tensor.Ones(shape),
                    (_, "bias") => Tensor.Zeros(shape),
                    _ => Tensor.Empty(shape).Normal_(generator, 0f, std),
                };
                if (owner is Embedding { PaddingIndex: int pad } && (uint)pad < (uint)shape[0]) value.Narrow(0, pad, 1).Zero_();
            }
            model.GetParameter(name).RequiresGrad = true;
            model.ReplaceParameter(name, value);
        }
    }
}
