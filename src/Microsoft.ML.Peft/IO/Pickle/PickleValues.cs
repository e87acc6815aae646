namespace Microsoft.ML.Peft.IO.Pickle;

/// <summary>A Python global that passed the allow-list (module and name as written in the pickle).</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>A Python dict or OrderedDict: key/value pairs in insertion order.</summary>
internal sealed class PickleDict
{
    public List<KeyValuePair<object?, object?>> Items { get; } = [];

    public void Set(object? key, object? value)
    {
        // Later assignments to an existing key replace the value in place, as in Python.
        for (int i = 0; i < Items.Count; i++)
        {
            if (Equals(Items[i].Key, key))
            {
                Items[i] = new(key, value);
                return;
            }
        }
        Items.Add(new(key, value));
    }
}

/// <summary>A tuple (immutable sequence).</summary>
internal sealed record PickleTuple(object?[] Items);

/// <summary>A storage referenced through a persistent id: zip entry <c>data/{Key}</c> holding <see cref="ElementCount"/> elements.</summary>
internal sealed record TorchStorageRef(string Key, CheckpointDType DType, long ElementCount);

/// <summary>The result of <c>torch._utils._rebuild_tensor_v2</c>: a strided view of a storage (offset and strides in elements).</summary>
internal sealed record TorchTensorRef(TorchStorageRef Storage, long StorageOffset, long[] Size, long[] Stride);
