using System.Runtime.InteropServices;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Loading;

/// <summary>
/// Shape-only stand-ins for parameters while a model's module tree is built. Every placeholder is a stride-0 view of
/// one shared float, so building the tree of a 7B-parameter model allocates nothing proportional to its size; the
/// loader then checks the checkpoint against the tree's names and shapes and only afterwards swaps real tensors in
/// (zero-copy views of the checkpoint, or initialised ones) with <see cref="Module.ReplaceParameter"/>.
/// </summary>
internal static unsafe class Placeholder
{
    private static readonly ExternalStorage Shared = new((nint)NativeMemory.AllocZeroed(sizeof(float)), 1, DType.Float32, owner: null);

    /// <summary>A float32 tensor of <paramref name="shape"/> that reads as zeros and holds no memory of its own.</summary>
    public static Tensor Create(params int[] shape) => Tensor.FromStorage(Shared, shape, new int[shape.Length]);

    /// <summary>Whether <paramref name="tensor"/> is still a placeholder (never bound to weights).</summary>
    public static bool Is(Tensor tensor) => ReferenceEquals(tensor.Storage, Shared);

    /// <summary>A torch.nn.Linear-shaped layer (weight [out, in], optional bias [out]) over placeholders.</summary>
    public static Linear Linear(int inFeatures, int outFeatures, bool bias) =>
        new(Create(outFeatures, inFeatures), bias ? Create(outFeatures) : null);

    /// <summary>An embedding table [count, dim] over a placeholder.</summary>
    public static Embedding Embedding(int count, int dim, int? paddingIndex = null) => new(Create(count, dim), paddingIndex);
}
