namespace Microsoft.ML.Data;

/// <summary>The source column(s) of a POCO member in a text file: one index, an inclusive range, or a list (a vector).</summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, AllowMultiple = false, Inherited = true)]
public sealed class LoadColumnAttribute : Attribute
{
    /// <summary>Loads the member from the field at <paramref name="fieldIndex"/> (0-based).</summary>
    public LoadColumnAttribute(int fieldIndex)
    {
        Sources = new List<TextLoader.Range> { new(fieldIndex) };
    }

    /// <summary>Loads a vector member from the fields <paramref name="start"/>..<paramref name="end"/> inclusive.</summary>
    public LoadColumnAttribute(int start, int end)
    {
        Sources = new List<TextLoader.Range> { new(start, end) };
    }

    /// <summary>Loads a vector member from the listed fields.</summary>
    public LoadColumnAttribute(int[] columnIndexes)
    {
        ArgumentNullException.ThrowIfNull(columnIndexes);
        Sources = columnIndexes.Select(i => new TextLoader.Range(i)).ToList();
    }

    internal List<TextLoader.Range> Sources { get; }
}

/// <summary>The IDataView column name of a POCO member (default: the member name).</summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, AllowMultiple = false, Inherited = true)]
public sealed class ColumnNameAttribute : Attribute
{
    /// <summary>Names the column.</summary>
    public ColumnNameAttribute(string name)
    {
        Name = name ?? throw new ArgumentNullException(nameof(name));
    }

    internal string Name { get; }
}

/// <summary>Marks an array (or VBuffer) member as a vector column, of fixed size when dimensions are given.</summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, AllowMultiple = false, Inherited = true)]
public sealed class VectorTypeAttribute : Attribute
{
    /// <summary>A vector of variable size.</summary>
    public VectorTypeAttribute()
    {
        Dims = Array.Empty<int>();
    }

    /// <summary>A vector of <paramref name="size"/> items.</summary>
    public VectorTypeAttribute(int size)
    {
        if (size < 0)
            throw new ArgumentOutOfRangeException(nameof(size), "Vector size must be non-negative.");
        Dims = size == 0 ? Array.Empty<int>() : new[] { size };
    }

    /// <summary>A multi-dimensional vector.</summary>
    public VectorTypeAttribute(params int[] dimensions)
    {
        ArgumentNullException.ThrowIfNull(dimensions);
        if (dimensions.Any(d => d <= 0))
            throw new ArgumentOutOfRangeException(nameof(dimensions), "Vector dimensions must be positive.");
        Dims = dimensions;
    }

    internal int[] Dims { get; }

    internal int Size => Dims.Length == 0 ? 0 : Dims.Aggregate(1, (a, b) => a * b);
}

/// <summary>Marks an unsigned integer member as a key column with <c>count</c> values (0 = missing).</summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, AllowMultiple = false, Inherited = true)]
public sealed class KeyTypeAttribute : Attribute
{
    /// <summary>Not supported, as in ML.NET: a key type needs its count.</summary>
    public KeyTypeAttribute()
    {
        throw new NotSupportedException("Using KeyType without the Count parameter is not supported");
    }

    /// <summary>A key with <paramref name="count"/> values.</summary>
    public KeyTypeAttribute(ulong count)
    {
        Count = count;
    }

    internal ulong Count { get; }
}

/// <summary>Excludes a POCO member from schema mapping.</summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, AllowMultiple = false, Inherited = true)]
public sealed class NoColumnAttribute : Attribute
{
}
