using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.PromptTuning;

/// <summary>
/// One adapter's prompt encoder (PEFT's <c>prompt_encoder[adapter]</c>): computes the [num_virtual_tokens, width]
/// table of virtual-token vectors — input embeddings (width = token_dim) or every layer's keys and values
/// (width = num_layers·2·token_dim). A reparameterised encoder (prefix projection, P-tuning's MLP/LSTM) can be
/// replaced by the table it computes, which is what PEFT saves.
/// </summary>
public abstract class VirtualTokenEncoder : Module
{
    private protected VirtualTokenEncoder(int numVirtualTokens, int width, bool isPrefix)
    {
        NumVirtualTokens = numVirtualTokens;
        Width = width;
        IsPrefix = isPrefix;
    }

    /// <summary>Rows of the table.</summary>
    public int NumVirtualTokens { get; }

    /// <summary>Columns of the table.</summary>
    public int Width { get; }

    /// <summary>Key/value prefixes (true) or input tokens (false).</summary>
    public bool IsPrefix { get; }

    /// <summary>Whether a reparameterisation (MLP, LSTM) still produces the table; false once it is a plain lookup table.</summary>
    public abstract bool IsReparameterized { get; }

    /// <summary>The table [NumVirtualTokens, Width] (with autograd into the encoder's parameters).</summary>
    public abstract Tensor Compute();

    /// <summary>Replaces the reparameterisation by the table it computes now (no-op for a lookup table); the table is trainable.</summary>
    public abstract void UseLookupTable();

    /// <summary>
    /// The tensor PEFT saves as "prompt_embeddings": the live lookup table, or (while reparameterised) a detached copy
    /// of what the encoder computes.
    /// </summary>
    internal Tensor SavedTable()
    {
        if (!IsReparameterized) return Compute();
        using (Autograd.NoGrad())
        using (TensorScope.Untracked())
        {
            return Compute().Contiguous().Clone();
        }
    }
}

/// <summary>A plain trainable lookup table "embedding.weight" [n, width] (prompt tuning; prefix tuning without projection; any encoder after training).</summary>
public sealed class LookupTableEncoder : VirtualTokenEncoder
{
    private readonly ModuleSlot<Embedding> embedding;

    /// <summary>A table over <paramref name="table"/> [n, width] (registered as a trainable parameter).</summary>
    public LookupTableEncoder(Tensor table, bool isPrefix)
        : base(table.Size(0), table.Size(1), isPrefix)
    {
        embedding = RegisterModule("embedding", new Embedding(table));
    }

    /// <summary>The table.</summary>
    public Tensor Table => embedding.Module.Weight;

    /// <inheritdoc/>
    public override bool IsReparameterized => false;

    /// <inheritdoc/>
    public override Tensor Compute() => Table;

    /// <inheritdoc/>
    public override void UseLookupTable()
    {
    }
}
