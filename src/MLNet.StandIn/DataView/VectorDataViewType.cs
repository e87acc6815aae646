using System.Collections.Immutable;

namespace Microsoft.ML.Data;

/// <summary>
/// A vector of <see cref="ItemType"/> values; the raw type is <see cref="VBuffer{T}"/> of the item's raw type.
/// <see cref="Size"/> 0 means the length varies from row to row.
/// </summary>
public sealed class VectorDataViewType : StructuredDataViewType
{
    /// <summary>A vector of <paramref name="size"/> items (0 = variable length).</summary>
    public VectorDataViewType(PrimitiveDataViewType itemType, int size = 0)
        : base(MakeRawType(itemType))
    {
        if (size < 0)
            throw new ArgumentOutOfRangeException(nameof(size), $"Vector size must be non-negative, got {size}.");
        ItemType = itemType;
        Size = size;
        Dimensions = size == 0 ? ImmutableArray<int>.Empty : ImmutableArray.Create(size);
    }

    /// <summary>A (possibly multi-dimensional) vector; the size is the product of the dimensions.</summary>
    public VectorDataViewType(PrimitiveDataViewType itemType, params int[] dimensions)
        : this(itemType, (dimensions ?? throw new ArgumentNullException(nameof(dimensions))).ToImmutableArray())
    {
    }

    /// <summary>A (possibly multi-dimensional) vector; the size is the product of the dimensions.</summary>
    public VectorDataViewType(PrimitiveDataViewType itemType, ImmutableArray<int> dimensions)
        : base(MakeRawType(itemType))
    {
        if (dimensions.IsDefault)
            throw new ArgumentNullException(nameof(dimensions));
        if (dimensions.Any(d => d < 0))
            throw new ArgumentOutOfRangeException(nameof(dimensions), "Vector dimensions must be non-negative.");
        ItemType = itemType;
        Dimensions = dimensions;
        long size = 1;
        foreach (var d in dimensions)
            size = checked(size * d);
        Size = dimensions.Length == 0 ? 0 : (int)size;
    }

    private static Type MakeRawType(PrimitiveDataViewType itemType)
        => typeof(VBuffer<>).MakeGenericType((itemType ?? throw new ArgumentNullException(nameof(itemType))).RawType);

    /// <summary>The dimensions (empty for a variable-length vector).</summary>
    public ImmutableArray<int> Dimensions { get; }

    /// <summary>Whether the size is fixed (<see cref="Size"/> &gt; 0).</summary>
    public bool IsKnownSize => Size > 0;

    /// <summary>The item type.</summary>
    public PrimitiveDataViewType ItemType { get; }

    /// <summary>The number of items (product of <see cref="Dimensions"/>), 0 when variable.</summary>
    public int Size { get; }

    /// <summary>Equal when item types, sizes and dimensions are equal.</summary>
    public override bool Equals(DataViewType? other)
        => other is VectorDataViewType v && v.ItemType.Equals(ItemType) && v.Size == Size && v.Dimensions.SequenceEqual(Dimensions);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is DataViewType other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(ItemType, Size);

    /// <summary>"<c>Vector&lt;Single, 3&gt;</c>" or "<c>Vector&lt;Single&gt;</c>".</summary>
    public override string ToString()
        => Dimensions.Length == 0 || Size == 0 ? $"Vector<{ItemType}>" : $"Vector<{ItemType}, {string.Join(", ", Dimensions)}>";
}
