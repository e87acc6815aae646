using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.Internal;

namespace Microsoft.ML.Transforms;

/// <summary>The untyped face of a learned value → key dictionary.</summary>
internal abstract class TermMap
{
    /// <summary>The number of keys (N); keys run 1..N.</summary>
    public abstract int Count { get; }

    /// <summary>The item type of the values.</summary>
    public abstract PrimitiveDataViewType ItemType { get; }

    /// <summary>The "KeyValues" annotation value: a <see cref="VBuffer{T}"/> (boxed) of the N values in key order.</summary>
    public abstract object KeyValues { get; }

    /// <summary>The key values as text, for addKeyValueAnnotationsAsText.</summary>
    public abstract VBuffer<ReadOnlyMemory<char>> KeyValuesAsText();

    /// <summary>A getter of keys (uint, or VBuffer of uint for vectors) over the input column.</summary>
    public abstract Delegate MakeMappingGetter(DataViewRow input, DataViewSchema.Column column, bool isVector);

    /// <summary>Learns the dictionary from one column of a view.</summary>
    public abstract void Train(IDataView data, DataViewSchema.Column column, int maximumNumberOfKeys, ValueToKeyMappingEstimator.KeyOrdinality ordinality);

    /// <summary>Rebuilds the dictionary from saved key values (a boxed VBuffer in key order).</summary>
    public abstract void Restore(object keyValues);

    public static TermMap Create(PrimitiveDataViewType itemType)
        => (TermMap)Activator.CreateInstance(typeof(TermMap<>).MakeGenericType(itemType.RawType), itemType)!;
}

/// <summary>
/// ValueToKey's dictionary for values of raw type <typeparamref name="T"/>: keys 1..N in first-occurrence (or value)
/// order; missing values (empty text, NaN, key 0) are never added and, like unseen values, map to key 0.
/// Lookup is one hash-table probe per value.
/// </summary>
internal sealed class TermMap<T> : TermMap
    where T : notnull
{
    private readonly Dictionary<T, uint> _keys;
    private readonly List<T> _values = new();

    public TermMap(PrimitiveDataViewType itemType)
    {
        ItemType = itemType;
        _keys = typeof(T) == typeof(ReadOnlyMemory<char>)
            ? new Dictionary<T, uint>((IEqualityComparer<T>)(object)TextComparer.Instance)
            : new Dictionary<T, uint>();
    }

    public override int Count => _values.Count;

    public override PrimitiveDataViewType ItemType { get; }

    public override object KeyValues => new VBuffer<T>(_values.Count, _values.ToArray());

    public override VBuffer<ReadOnlyMemory<char>> KeyValuesAsText()
        => new(_values.Count, _values.Select(v => ToText(v).AsMemory()).ToArray());

    private static string ToText(T value) => value switch
    {
        ReadOnlyMemory<char> text => text.ToString(),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value?.ToString() ?? "",
    };

    /// <summary>Whether the value is ML.NET's missing value for its type (never given a key).</summary>
    private static bool IsMissing(in T value) => value switch
    {
        ReadOnlyMemory<char> text => text.IsEmpty,
        float f => float.IsNaN(f),
        double d => double.IsNaN(d),
        _ => false,
    };

    /// <summary>Adds a value if it is new, not missing and the dictionary is not full.</summary>
    public void TryAdd(in T value, int maximumNumberOfKeys, bool isKey)
    {
        if (_values.Count >= maximumNumberOfKeys || IsMissing(in value) || (isKey && EqualityComparer<T>.Default.Equals(value, default!)))
            return;
        if (_keys.ContainsKey(value))
            return;
        _values.Add(value);
        _keys.Add(value, (uint)_values.Count);
    }

    /// <summary>Renumbers the keys in value order (ordinal for text).</summary>
    public void SortByValue()
    {
        if (typeof(T) == typeof(ReadOnlyMemory<char>))
            _values.Sort((IComparer<T>)(object)TextComparer.Instance);
        else
            _values.Sort(Comparer<T>.Default);
        _keys.Clear();
        for (int i = 0; i < _values.Count; i++)
            _keys.Add(_values[i], (uint)(i + 1));
    }

    public uint Map(in T value) => _keys.TryGetValue(value, out uint key) ? key : 0;

    public override Delegate MakeMappingGetter(DataViewRow input, DataViewSchema.Column column, bool isVector)
    {
        if (!isVector)
        {
            var getter = input.GetGetter<T>(column);
            T value = default!;
            return (ValueGetter<uint>)((ref uint dst) =>
            {
                getter(ref value);
                dst = Map(in value);
            });
        }
        var vectorGetter = input.GetGetter<VBuffer<T>>(column);
        VBuffer<T> source = default;
        return (ValueGetter<VBuffer<uint>>)((ref VBuffer<uint> dst) =>
        {
            vectorGetter(ref source);
            var editor = VBufferEditor.Create(ref dst, source.Length);
            if (source.IsDense)
            {
                var values = source.GetValues();
                for (int i = 0; i < values.Length; i++)
                    editor.Values[i] = Map(in values[i]);
            }
            else
            {
                T zero = default!;
                editor.Values.Fill(Map(in zero));
                var values = source.GetValues();
                var indices = source.GetIndices();
                for (int i = 0; i < values.Length; i++)
                    editor.Values[indices[i]] = Map(in values[i]);
            }
            dst = editor.Commit();
        });
    }

    /// <summary>Learns the dictionary from one column of <paramref name="data"/>.</summary>
    public override void Train(IDataView data, DataViewSchema.Column column, int maximumNumberOfKeys, ValueToKeyMappingEstimator.KeyOrdinality ordinality)
    {
        bool isKey = ItemType is KeyDataViewType;
        using (var cursor = data.GetRowCursor(new[] { column }))
        {
            if (column.Type is VectorDataViewType)
            {
                var getter = cursor.GetGetter<VBuffer<T>>(column);
                VBuffer<T> buffer = default;
                while (cursor.MoveNext() && _values.Count < maximumNumberOfKeys)
                {
                    getter(ref buffer);
                    foreach (var value in buffer.DenseValues())
                        TryAdd(in value, maximumNumberOfKeys, isKey);
                }
            }
            else
            {
                var getter = cursor.GetGetter<T>(column);
                T value = default!;
                while (cursor.MoveNext() && _values.Count < maximumNumberOfKeys)
                {
                    getter(ref value);
                    TryAdd(in value, maximumNumberOfKeys, isKey);
                }
            }
        }
        if (ordinality == ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            SortByValue();
    }

    /// <summary>Rebuilds a dictionary from saved key values (in key order).</summary>
    public override void Restore(object keyValues)
    {
        var buffer = (VBuffer<T>)keyValues;
        foreach (var value in buffer.DenseValues())
        {
            if (_keys.ContainsKey(value))
                throw new InvalidDataException("Saved ValueToKey dictionary contains a duplicate value.");
            _values.Add(value);
            _keys.Add(value, (uint)_values.Count);
        }
    }
}
