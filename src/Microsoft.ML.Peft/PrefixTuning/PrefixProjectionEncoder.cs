using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.PromptTuning;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.PrefixTuning;

/// <summary>
/// PEFT's <c>PrefixEncoder</c> with prefix_projection: past_key_values = transform(embedding) with
/// transform = Linear(token_dim, encoder_hidden_size) → tanh → Linear(encoder_hidden_size, L·2·token_dim).
/// Parameter names as PEFT's: embedding.weight, transform.0.{weight,bias}, transform.2.{weight,bias}.
/// <see cref="UseLookupTable"/> drops the MLP for the table it computes (what PEFT saves after training).
/// </summary>
public sealed class PrefixProjectionEncoder : VirtualTokenEncoder
{
    private readonly ModuleSlot<Module> embedding;
    private readonly ModuleSlot<Module> transform;

    /// <summary>Initialised as torch: embedding N(0, 1), linears Kaiming-uniform.</summary>
    public PrefixProjectionEncoder(int numVirtualTokens, int tokenDim, int encoderHiddenSize, int width, Generator generator)
        : base(numVirtualTokens, width, isPrefix: true)
    {
        embedding = RegisterModule<Module>("embedding", new Embedding(numVirtualTokens, tokenDim, generator));
        transform = RegisterModule<Module>("transform", new TanhMlp(tokenDim, encoderHiddenSize, width, generator));
    }

    /// <inheritdoc/>
    public override bool IsReparameterized => transform.Module is TanhMlp;

    /// <inheritdoc/>
    public override Tensor Compute() => transform.Module is TanhMlp mlp
        ? mlp.Forward(((Embedding)embedding.Module).Weight)
        : ((Embedding)embedding.Module).Weight;

    /// <inheritdoc/>
    public override void UseLookupTable()
    {
        if (!IsReparameterized) return;
        bool trainable = ((Embedding)embedding.Module).Weight.RequiresGrad;
        var table = new Embedding(SavedTable());
        table.SetRequiresGrad(trainable);
        ReplaceModule("embedding", table);
        ReplaceModule("transform", new PromptPlumbing.EmptyModule());
    }

    /// <summary>The two-layer tanh MLP ("0" and "2" as torch.nn.Sequential numbers them).</summary>
    private sealed class TanhMlp : Module
    {
        private readonly ModuleSlot<LinearLayer> first;
        private readonly ModuleSlot<LinearLayer> second;

        public TanhMlp(int input, int hidden, int output, Generator generator)
        {
            first = RegisterModule<LinearLayer>("0", new Linear(input, hidden, generator));
            second = RegisterModule<LinearLayer>("2", new Linear(hidden, output, generator));
        }

        public Tensor Forward(Tensor x) => second.Module.Forward(first.Module.Forward(x).Tanh());
    }
}
