using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.PromptTuning;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.PTuning;

/// <summary>
/// PEFT's P-tuning <c>PromptEncoder</c>: embedding [n, token_dim] → MLP head (or bidirectional LSTM, then MLP head) →
/// [n, token_dim]. Parameter names as PEFT's: embedding.weight, mlp_head.{0,2,4}.{weight,bias} (MLP) or
/// lstm_head.{weight,bias}_{ih,hh}_l{k}[_reverse] and mlp_head.{0,2}.* (LSTM). <see cref="UseLookupTable"/> replaces
/// the whole encoder by the table it computes.
/// </summary>
public sealed class PTuningEncoder : VirtualTokenEncoder
{
    private readonly ModuleSlot<Module> embedding;
    private readonly ModuleSlot<Module> lstmHead;
    private readonly ModuleSlot<Module> mlpHead;

    /// <summary>Initialised as torch: embedding N(0, 1), linears Kaiming-uniform, LSTM U(−1/√h, 1/√h).</summary>
    public PTuningEncoder(int numVirtualTokens, int tokenDim, int hidden, PromptEncoderReparameterization type, int lstmLayers, Generator generator)
        : base(numVirtualTokens, tokenDim, isPrefix: false)
    {
        ArgumentNullException.ThrowIfNull(generator);
        embedding = RegisterModule<Module>("embedding", new Embedding(numVirtualTokens, tokenDim, generator));
        if (type == PromptEncoderReparameterization.Lstm)
        {
            lstmHead = RegisterModule<Module>("lstm_head", new BidirectionalLstm(tokenDim, hidden, lstmLayers, generator));
            mlpHead = RegisterModule<Module>("mlp_head", new ReluMlp([2 * hidden, 2 * hidden, tokenDim], generator));
        }
        else
        {
            lstmHead = RegisterModule<Module>("lstm_head", new PromptPlumbing.EmptyModule());
            mlpHead = RegisterModule<Module>("mlp_head", new ReluMlp([tokenDim, hidden, hidden, tokenDim], generator));
        }
    }

    private Tensor Table => ((Embedding)embedding.Module).Weight;

    /// <inheritdoc/>
    public override bool IsReparameterized => mlpHead.Module is ReluMlp;

    /// <inheritdoc/>
    public override Tensor Compute()
    {
        if (mlpHead.Module is not ReluMlp mlp) return Table;
        var x = lstmHead.Module is BidirectionalLstm lstm ? lstm.Forward(Table) : Table;
        return mlp.Forward(x);
    }

    /// <inheritdoc/>
    public override void UseLookupTable()
    {
        if (!IsReparameterized) return;
        bool trainable = Table.RequiresGrad;
        var table = new Embedding(SavedTable());
        table.SetRequiresGrad(trainable);
        ReplaceModule("embedding", table);
        ReplaceModule("lstm_head", new PromptPlumbing.EmptyModule());
        ReplaceModule("mlp_head", new PromptPlumbing.EmptyModule());
    }

    /// <summary>Linear layers with ReLU between them, numbered as torch.nn.Sequential (0, 2, 4, ...).</summary>
    private sealed class ReluMlp : Module
    {
        private readonly List<ModuleSlot<LinearLayer>> layers = [];

        public ReluMlp(int[] sizes, Generator generator)
        {
            for (int i = 0; i + 1 < sizes.Length; i++) layers.Add(RegisterModule<LinearLayer>((2 * i).ToString(System.Globalization.CultureInfo.InvariantCulture), new Linear(sizes[i], sizes[i + 1], generator)));
        }

        public Tensor Forward(Tensor x)
        {
            for (int i = 0; i < layers.Count; i++)
            {
                x = layers[i].Module.Forward(x);
                if (i + 1 < layers.Count) x = x.Relu();
            }
            return x;
        }
    }
}
