using System.Diagnostics.CodeAnalysis;
using Microsoft.ML.Peft.IO;

namespace Microsoft.ML.Peft.QLora;

/// <summary>
/// A view of a checkpoint without some of its keys (the 4-bit weights' arrays, already consumed), so the ordinary
/// weight binder sees only the tensors it binds. Disposing it disposes nothing: the underlying source owns the file.
/// </summary>
internal sealed class FilteredTensorSource(ITensorSource inner, IReadOnlySet<string> hidden) : ITensorSource
{
    private readonly IReadOnlyList<string> _names = [.. inner.Names.Where(n => !hidden.Contains(n))];

    public string Path => inner.Path;

    public IReadOnlyList<string> Names => _names;

    public IReadOnlyDictionary<string, string> Metadata => inner.Metadata;

    public bool Contains(string name) => !hidden.Contains(name) && inner.Contains(name);

    public TensorView GetTensor(string name) =>
        hidden.Contains(name) ? throw new KeyNotFoundException($"{inner.Path}: tensor '{name}' is a 4-bit weight array") : inner.GetTensor(name);

    public bool TryGetTensor(string name, [NotNullWhen(true)] out TensorView? tensor)
    {
        tensor = null;
        return !hidden.Contains(name) && inner.TryGetTensor(name, out tensor);
    }

    public void Dispose()
    {
    }
}
