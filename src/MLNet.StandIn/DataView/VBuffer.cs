using System.Collections;
using System.Globalization;

namespace Microsoft.ML.Data;

/// <summary>
/// A dense or sparse vector of logical length <see cref="Length"/>. Dense: the first <see cref="Length"/> entries of the
/// values array. Sparse: <c>count</c> explicit values at strictly increasing indices; the rest are <c>default(T)</c>.
/// The buffer takes ownership of the arrays passed to it (it does not copy them), which is what lets getters reuse memory.
/// </summary>
public readonly struct VBuffer<T> : IEnumerable
{
    private readonly int _count;
    private readonly T[]? _values;
    private readonly int[]? _indices;

    /// <summary>The logical length of the vector.</summary>
    public readonly int Length;

    /// <summary>A dense vector over the first <paramref name="length"/> entries of <paramref name="values"/>;
    /// <paramref name="indices"/> is only kept as a spare buffer for later reuse.</summary>
    public VBuffer(int length, T[] values, int[]? indices = null)
    {
        if (length < 0)
            throw new ArgumentOutOfRangeException(nameof(length), $"VBuffer length must be non-negative, got {length}.");
        if ((values?.Length ?? 0) < length)
            throw new ArgumentException($"A dense VBuffer of length {length} needs at least {length} values, got {values?.Length ?? 0}.", nameof(values));
        Length = length;
        _count = length;
        _values = values;
        _indices = indices;
    }

    /// <summary>A vector with <paramref name="count"/> explicit values: dense when count == length, else sparse at
    /// <paramref name="indices"/> (strictly increasing, each in [0, length)).</summary>
    public VBuffer(int length, int count, T[] values, int[]? indices)
    {
        if (length < 0)
            throw new ArgumentOutOfRangeException(nameof(length), $"VBuffer length must be non-negative, got {length}.");
        if (count < 0 || count > length)
            throw new ArgumentOutOfRangeException(nameof(count), $"VBuffer count must be in [0, {length}], got {count}.");
        if ((values?.Length ?? 0) < count)
            throw new ArgumentException($"VBuffer needs at least {count} values, got {values?.Length ?? 0}.", nameof(values));
        if (count < length)
        {
            if ((indices?.Length ?? 0) < count)
                throw new ArgumentException($"A sparse VBuffer with {count} values needs at least {count} indices.", nameof(indices));
            for (int i = 0; i < count; i++)
            {
                int index = indices![i];
                if (index < 0 || index >= length || (i > 0 && index <= indices[i - 1]))
                    throw new ArgumentException($"Sparse VBuffer indices must be strictly increasing and in [0, {length}); index {i} is {index}.", nameof(indices));
            }
        }
        Length = length;
        _count = count;
        _values = values;
        _indices = indices;
    }

    /// <summary>Whether every position has an explicit value.</summary>
    public bool IsDense => _count == Length;

    /// <summary>The explicit values (all <see cref="Length"/> values when dense).</summary>
    public ReadOnlySpan<T> GetValues() => _values is null ? ReadOnlySpan<T>.Empty : _values.AsSpan(0, _count);

    /// <summary>The indices of the explicit values; empty when dense.</summary>
    public ReadOnlySpan<int> GetIndices() => IsDense || _indices is null ? ReadOnlySpan<int>.Empty : _indices.AsSpan(0, _count);

    internal T[]? ValuesArray => _values;

    internal int[]? IndicesArray => _indices;

    /// <summary>Copies into <paramref name="destination"/> as a dense vector, reusing its arrays when large enough.</summary>
    public void CopyToDense(ref VBuffer<T> destination)
    {
        var editor = VBufferEditor.Create(ref destination, Length);
        CopyTo(editor.Values, 0, default!);
        destination = editor.Commit();
    }

    /// <summary>Copies into <paramref name="destination"/> keeping density, reusing its arrays when large enough.</summary>
    public void CopyTo(ref VBuffer<T> destination)
    {
        var editor = VBufferEditor.Create(ref destination, Length, _count);
        GetValues().CopyTo(editor.Values);
        if (!IsDense)
            GetIndices().CopyTo(editor.Indices);
        destination = editor.Commit();
    }

    /// <summary>Copies the slice [<paramref name="sourceIndex"/>, +<paramref name="length"/>) into <paramref name="destination"/>.</summary>
    public void CopyTo(ref VBuffer<T> destination, int sourceIndex, int length)
    {
        if (sourceIndex < 0 || length < 0 || sourceIndex > Length - length)
            throw new ArgumentOutOfRangeException(nameof(sourceIndex), $"Slice [{sourceIndex}, {sourceIndex}+{length}) is outside a vector of length {Length}.");
        if (IsDense)
        {
            var editor = VBufferEditor.Create(ref destination, length);
            GetValues().Slice(sourceIndex, length).CopyTo(editor.Values);
            destination = editor.Commit();
            return;
        }
        var indices = GetIndices();
        int first = LowerBound(indices, sourceIndex);
        int last = LowerBound(indices, sourceIndex + length);
        int n = last - first;
        var sparse = VBufferEditor.Create(ref destination, length, n);
        GetValues().Slice(first, n).CopyTo(sparse.Values);
        if (n < length)
        {
            for (int i = 0; i < n; i++)
                sparse.Indices[i] = indices[first + i] - sourceIndex;
        }
        destination = sparse.Commit();
    }

    /// <summary>Writes all <see cref="Length"/> values (implicit ones as default) into <paramref name="destination"/>.</summary>
    public void CopyTo(Span<T> destination) => CopyTo(destination, 0, default!);

    /// <summary>Writes all values into <paramref name="destination"/> from <paramref name="destinationIndex"/>, implicit ones as <paramref name="defaultValue"/>.</summary>
    public void CopyTo(Span<T> destination, int destinationIndex, T defaultValue = default!)
    {
        if (destinationIndex < 0 || destination.Length - destinationIndex < Length)
            throw new ArgumentException($"Destination of length {destination.Length} cannot hold {Length} values from index {destinationIndex}.", nameof(destination));
        var target = destination.Slice(destinationIndex, Length);
        if (IsDense)
        {
            GetValues().CopyTo(target);
            return;
        }
        target.Fill(defaultValue);
        var values = GetValues();
        var indices = GetIndices();
        for (int i = 0; i < values.Length; i++)
            target[indices[i]] = values[i];
    }

    /// <summary>Copies <paramref name="length"/> values of <paramref name="source"/> from <paramref name="sourceIndex"/> into a dense <paramref name="destination"/>.</summary>
    public static void Copy(T[] source, int sourceIndex, ref VBuffer<T> destination, int length)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (sourceIndex < 0 || length < 0 || sourceIndex > source.Length - length)
            throw new ArgumentOutOfRangeException(nameof(sourceIndex), $"Slice [{sourceIndex}, {sourceIndex}+{length}) is outside an array of length {source.Length}.");
        var editor = VBufferEditor.Create(ref destination, length);
        source.AsSpan(sourceIndex, length).CopyTo(editor.Values);
        destination = editor.Commit();
    }

    /// <summary>The (index, value) pairs of the explicit values, or of all positions when <paramref name="all"/>.</summary>
    public IEnumerable<KeyValuePair<int, T>> Items(bool all = false)
    {
        var values = _values;
        var indices = _indices;
        int count = _count;
        int length = Length;
        if (count == length || all)
        {
            for (int i = 0; i < length; i++)
                yield return new KeyValuePair<int, T>(i, GetItemOrDefault(i, values, indices, count, length));
        }
        else
        {
            for (int i = 0; i < count; i++)
                yield return new KeyValuePair<int, T>(indices![i], values![i]);
        }
    }

    /// <summary>All <see cref="Length"/> values in order, implicit ones as default.</summary>
    public IEnumerable<T> DenseValues()
    {
        var values = _values;
        var indices = _indices;
        int count = _count;
        int length = Length;
        for (int i = 0; i < length; i++)
            yield return GetItemOrDefault(i, values, indices, count, length);
    }

    /// <summary>Reads the value at <paramref name="index"/> (default when implicit).</summary>
    public void GetItemOrDefault(int index, ref T destination) => destination = GetItemOrDefault(index);

    /// <summary>The value at <paramref name="index"/> (default when implicit).</summary>
    public T GetItemOrDefault(int index)
    {
        if ((uint)index >= (uint)Length)
            throw new ArgumentOutOfRangeException(nameof(index), $"Index {index} is outside a vector of length {Length}.");
        return GetItemOrDefault(index, _values, _indices, _count, Length);
    }

    private static T GetItemOrDefault(int index, T[]? values, int[]? indices, int count, int length)
    {
        if (count == length)
            return values![index];
        int position = Array.BinarySearch(indices!, 0, count, index);
        return position >= 0 ? values![position] : default!;
    }

    private static int LowerBound(ReadOnlySpan<int> sorted, int value)
    {
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (sorted[mid] < value)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }

    /// <summary>"Dense vector of size N" or "Sparse vector of size N, k explicit values".</summary>
    public override string ToString()
        => IsDense
            ? string.Create(CultureInfo.InvariantCulture, $"Dense vector of size {Length}")
            : string.Create(CultureInfo.InvariantCulture, $"Sparse vector of size {Length}, {_count} explicit values");

    /// <summary>Enumerates the underlying values array (all of it, as ML.NET does).</summary>
    public IEnumerator GetEnumerator() => (_values ?? Array.Empty<T>()).GetEnumerator();
}
