namespace Microsoft.ML.Data;

/// <summary>Creates <see cref="VBufferEditor{T}"/>s that fill a <see cref="VBuffer{T}"/> in place, reusing its arrays.</summary>
public static class VBufferEditor
{
    /// <summary>An editor with the same length and density as <paramref name="destination"/>, over its own arrays.</summary>
    public static VBufferEditor<T> CreateFromBuffer<T>(scoped ref VBuffer<T> destination)
    {
        int count = destination.GetValues().Length;
        return new VBufferEditor<T>(destination.Length, count, destination.ValuesArray ?? Array.Empty<T>(),
            destination.IndicesArray ?? Array.Empty<int>(), requireIndicesOnDense: false, createdNewValues: false, createdNewIndices: false);
    }

    /// <summary>
    /// An editor for a vector of <paramref name="newLogicalLength"/> with <paramref name="valuesCount"/> explicit values
    /// (default: dense). The destination's arrays are reused when they are large enough; otherwise new arrays of at
    /// least <paramref name="maxValuesCapacity"/> are allocated, keeping old contents if <paramref name="keepOldOnResize"/>.
    /// </summary>
    public static VBufferEditor<T> Create<T>(scoped ref VBuffer<T> destination, int newLogicalLength, int? valuesCount = null,
        int? maxValuesCapacity = null, bool keepOldOnResize = false, bool requireIndicesOnDense = false)
    {
        if (newLogicalLength < 0)
            throw new ArgumentOutOfRangeException(nameof(newLogicalLength), $"Length must be non-negative, got {newLogicalLength}.");
        int count = valuesCount ?? newLogicalLength;
        if (count < 0 || count > newLogicalLength)
            throw new ArgumentOutOfRangeException(nameof(valuesCount), $"Values count must be in [0, {newLogicalLength}], got {count}.");

        var values = destination.ValuesArray ?? Array.Empty<T>();
        bool createdNewValues = false;
        if (values.Length < count)
        {
            int capacity = Math.Max(count, maxValuesCapacity ?? count);
            var fresh = new T[capacity];
            if (keepOldOnResize)
                values.AsSpan().CopyTo(fresh);
            values = fresh;
            createdNewValues = true;
        }

        var indices = destination.IndicesArray ?? Array.Empty<int>();
        bool createdNewIndices = false;
        bool needIndices = count < newLogicalLength || requireIndicesOnDense;
        if (needIndices && indices.Length < count)
        {
            int capacity = Math.Max(count, maxValuesCapacity ?? count);
            var fresh = new int[capacity];
            if (keepOldOnResize)
                indices.AsSpan().CopyTo(fresh);
            indices = fresh;
            createdNewIndices = true;
        }

        return new VBufferEditor<T>(newLogicalLength, count, values, indices, requireIndicesOnDense, createdNewValues, createdNewIndices);
    }
}

/// <summary>Writable views of a vector's value (and index) arrays; <see cref="Commit"/> produces the finished buffer.</summary>
public readonly ref struct VBufferEditor<T>
{
    private readonly int _logicalLength;
    private readonly T[] _values;
    private readonly int[] _indices;

    /// <summary>The explicit values to fill.</summary>
    public readonly Span<T> Values;

    /// <summary>The indices to fill (sparse vectors, or dense ones when indices were required).</summary>
    public readonly Span<int> Indices;

    /// <summary>Whether a new values array had to be allocated.</summary>
    public bool CreatedNewValues { get; }

    /// <summary>Whether a new indices array had to be allocated.</summary>
    public bool CreatedNewIndices { get; }

    internal VBufferEditor(int logicalLength, int valuesCount, T[] values, int[] indices, bool requireIndicesOnDense,
        bool createdNewValues, bool createdNewIndices)
    {
        _logicalLength = logicalLength;
        _values = values;
        _indices = indices;
        Values = values.AsSpan(0, valuesCount);
        bool sparse = valuesCount < logicalLength;
        Indices = sparse || requireIndicesOnDense ? indices.AsSpan(0, Math.Min(valuesCount, indices.Length)) : Span<int>.Empty;
        CreatedNewValues = createdNewValues;
        CreatedNewIndices = createdNewIndices;
    }

    /// <summary>The finished vector.</summary>
    public VBuffer<T> Commit() => new(_logicalLength, Values.Length, _values, _indices);

    /// <summary>The finished vector keeping only the first <paramref name="physicalValuesCount"/> explicit values.</summary>
    public VBuffer<T> CommitTruncated(int physicalValuesCount)
    {
        if (physicalValuesCount < 0 || physicalValuesCount > Values.Length)
            throw new ArgumentOutOfRangeException(nameof(physicalValuesCount), $"Must be in [0, {Values.Length}], got {physicalValuesCount}.");
        return new VBuffer<T>(_logicalLength, physicalValuesCount, _values, _indices);
    }
}
