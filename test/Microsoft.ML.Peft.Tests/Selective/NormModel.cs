using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Selective;

/// <summary>
/// A tiny pre-norm model with Hugging Face-style names: model.layers.{i}.{input_layernorm, attn.q_proj, mlp.fc},
/// model.norm (RMSNorm), classifier. d = 4, 2 classes, 3 layers: per layer LayerNorm 8 + q_proj 20 + fc 20 = 48,
/// norm 4, classifier 10 → 158 parameters.
/// </summary>
internal sealed class NormModel : Module
{
    public const int Dim = 4;

    public NormModel(Generator g, int layerCount = 3)
    {
        Body = RegisterModule("model", new Decoder(g, layerCount));
        Classifier = RegisterModule<LinearLayer>("classifier", new Linear(Dim, 2, g));
    }

    public ModuleSlot<Decoder> Body { get; }

    public ModuleSlot<LinearLayer> Classifier { get; }

    public Tensor Forward(Tensor x)
    {
        var h = x;
        var body = Body.Module;
        for (int i = 0; i < body.Layers.Module.Count; i++) h = body.Layers.Module[i].Forward(h);
        return Classifier.Module.Forward(body.Norm.Module.Forward(h));
    }

    internal sealed class Decoder : Module
    {
        public Decoder(Generator g, int layerCount)
        {
            Layers = RegisterModule("layers", new ModuleList<Block>(Enumerable.Range(0, layerCount).Select(_ => new Block(g))));
            Norm = RegisterModule("norm", new RMSNorm(Dim));
        }

        public ModuleSlot<ModuleList<Block>> Layers { get; }

        public ModuleSlot<RMSNorm> Norm { get; }
    }

    internal sealed class Block : Module
    {
        public Block(Generator g)
        {
            InputLayerNorm = RegisterModule("input_layernorm", new LayerNorm(Dim));
            Attn = RegisterModule("attn", new Projection(g, "q_proj"));
            Mlp = RegisterModule("mlp", new Projection(g, "fc"));
            // Non-trivial norm parameters, so training them visibly changes the output.
            using (Autograd.NoGrad())
            {
                InputLayerNorm.Module.Weight!.Uniform_(g, 0.5f, 1.5f);
                InputLayerNorm.Module.Bias!.Uniform_(g, -0.5f, 0.5f);
            }
        }

        public ModuleSlot<LayerNorm> InputLayerNorm { get; }

        public ModuleSlot<Projection> Attn { get; }

        public ModuleSlot<Projection> Mlp { get; }

        public Tensor Forward(Tensor x)
        {
            x = x.Add(Attn.Module.Linear.Module.Forward(InputLayerNorm.Module.Forward(x)));
            return x.Add(Mlp.Module.Linear.Module.Forward(x).Relu());
        }
    }

    internal sealed class Projection : Module
    {
        public Projection(Generator g, string name) => Linear = RegisterModule<LinearLayer>(name, new Linear(Dim, Dim, g));

        public ModuleSlot<LinearLayer> Linear { get; }
    }
}
