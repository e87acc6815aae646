using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>What a <see cref="IResidualStreamHook"/> may know about one forward pass: which positions hold real tokens.</summary>
public sealed class ResidualStreamContext
{
    private readonly int[]? mask;

    /// <summary>A context for [<paramref name="batch"/>, <paramref name="seq"/>] tokens; <paramref name="mask"/> row-major 1 = real token (null = all real).</summary>
    public ResidualStreamContext(int batch, int seq, int[]? mask, int past)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        ArgumentOutOfRangeException.ThrowIfNegative(seq);
        ArgumentOutOfRangeException.ThrowIfNegative(past);
        if (mask is not null && mask.Length != batch * seq)
            throw new ArgumentException($"the token mask has {mask.Length} entries; [{batch}, {seq}] needs {batch * seq}", nameof(mask));
        Batch = batch;
        Seq = seq;
        this.mask = mask;
        Past = past;
    }

    /// <summary>Rows in the batch.</summary>
    public int Batch { get; }

    /// <summary>Positions per row in this forward.</summary>
    public int Seq { get; }

    /// <summary>Positions already in a generation cache before this forward (0 for a whole prompt).</summary>
    public int Past { get; }

    /// <summary>Whether position <paramref name="t"/> of row <paramref name="row"/> holds a real token (attention mask 1).</summary>
    public bool IsReal(int row, int t) => mask is null || mask[row * Seq + t] != 0;

    /// <summary>
    /// Per-forward memo for the hook (e.g. the positions it edits, computed once and reused by every layer); the
    /// backbone creates a fresh context for every forward.
    /// </summary>
    public object? HookState { get; set; }

    /// <summary>
    /// The context of one forward, or null without a hook. <paramref name="attentionMask"/> is int32 [batch, past + seq]
    /// (null = no padding); only the current <paramref name="seq"/> positions are described.
    /// </summary>
    internal static ResidualStreamContext? For(IResidualStreamHook? hook, Tensor? attentionMask, int batch, int seq, int past, bool promptActive)
    {
        if (hook is null) return null;
        if (promptActive)
            throw new NotSupportedException("a residual-stream intervention (ReFT) cannot be combined with an attached prompt-learning method: the virtual tokens would shift the positions it edits");
        if (attentionMask is null) return new ResidualStreamContext(batch, seq, null, past);
        int width = attentionMask.Size(1);
        var source = (attentionMask.IsContiguous ? attentionMask : attentionMask.Contiguous()).AsReadOnlySpan<int>();
        var current = new int[batch * seq];
        for (int b = 0; b < batch; b++) source.Slice(b * width + width - seq, seq).CopyTo(current.AsSpan(b * seq, seq));
        return new ResidualStreamContext(batch, seq, current, past);
    }
}
