namespace Microsoft.ML.Peft.IO;

/// <summary>
/// A named collection of tensors read from a checkpoint: one safetensors file, a sharded safetensors index, or a
/// PyTorch <c>pytorch_model.bin</c>. Views stay valid until the source is disposed.
/// </summary>
public interface ITensorSource : IDisposable
{
    /// <summary>The file (or index file) this source was opened from.</summary>
    string Path { get; }

    /// <summary>Tensor names in storage order.</summary>
    IReadOnlyList<string> Names { get; }

    /// <summary>The checkpoint's string metadata (safetensors <c>__metadata__</c>); empty when there is none.</summary>
    IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Whether a tensor with this name exists.</summary>
    bool Contains(string name);

    /// <summary>The named tensor; throws <see cref="KeyNotFoundException"/> naming the tensor and the file.</summary>
    TensorView GetTensor(string name);

    /// <summary>The named tensor, or false when absent.</summary>
    bool TryGetTensor(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out TensorView? tensor);
}
