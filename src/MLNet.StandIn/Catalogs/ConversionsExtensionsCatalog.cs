using Microsoft.ML.Transforms;

namespace Microsoft.ML;

/// <summary>MapValueToKey, MapKeyToValue and MapKeyToVector.</summary>
public static class ConversionsExtensionsCatalog
{
    /// <summary>Maps the values of <paramref name="inputColumnName"/> (default: the output name) to keys 1..N learned during Fit.</summary>
    public static ValueToKeyMappingEstimator MapValueToKey(this TransformsCatalog.ConversionTransforms catalog, string outputColumnName,
        string? inputColumnName = null, int maximumNumberOfKeys = 1000000,
        ValueToKeyMappingEstimator.KeyOrdinality keyOrdinality = ValueToKeyMappingEstimator.KeyOrdinality.ByOccurrence,
        bool addKeyValueAnnotationsAsText = false, IDataView? keyData = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrEmpty(outputColumnName);
        return new ValueToKeyMappingEstimator(new[] { (outputColumnName, inputColumnName ?? outputColumnName) },
            maximumNumberOfKeys, keyOrdinality, addKeyValueAnnotationsAsText, keyData);
    }

    /// <summary>MapValueToKey over several column pairs.</summary>
    public static ValueToKeyMappingEstimator MapValueToKey(this TransformsCatalog.ConversionTransforms catalog, InputOutputColumnPair[] columns,
        int maximumNumberOfKeys = 1000000,
        ValueToKeyMappingEstimator.KeyOrdinality keyOrdinality = ValueToKeyMappingEstimator.KeyOrdinality.ByOccurrence,
        bool addKeyValueAnnotationsAsText = false, IDataView? keyData = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new ValueToKeyMappingEstimator(Pairs(columns), maximumNumberOfKeys, keyOrdinality, addKeyValueAnnotationsAsText, keyData);
    }

    /// <summary>Maps keys back to their values using the key column's "KeyValues" annotation.</summary>
    public static KeyToValueMappingEstimator MapKeyToValue(this TransformsCatalog.ConversionTransforms catalog, string outputColumnName, string? inputColumnName = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrEmpty(outputColumnName);
        return new KeyToValueMappingEstimator(new[] { (outputColumnName, inputColumnName ?? outputColumnName) });
    }

    /// <summary>MapKeyToValue over several column pairs.</summary>
    public static KeyToValueMappingEstimator MapKeyToValue(this TransformsCatalog.ConversionTransforms catalog, InputOutputColumnPair[] columns)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new KeyToValueMappingEstimator(Pairs(columns));
    }

    /// <summary>Maps keys to indicator vectors (or count vectors for vectors of keys with <paramref name="outputCountVector"/>).</summary>
    public static KeyToVectorMappingEstimator MapKeyToVector(this TransformsCatalog.ConversionTransforms catalog, string outputColumnName,
        string? inputColumnName = null, bool outputCountVector = false)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrEmpty(outputColumnName);
        return new KeyToVectorMappingEstimator(new[] { (outputColumnName, inputColumnName ?? outputColumnName, outputCountVector) });
    }

    /// <summary>MapKeyToVector over several column pairs.</summary>
    public static KeyToVectorMappingEstimator MapKeyToVector(this TransformsCatalog.ConversionTransforms catalog, InputOutputColumnPair[] columns,
        bool outputCountVector = false)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new KeyToVectorMappingEstimator(Pairs(columns).Select(p => (p.Item1, p.Item2, outputCountVector)).ToArray());
    }

    internal static (string, string)[] Pairs(InputOutputColumnPair[] columns)
    {
        ArgumentNullException.ThrowIfNull(columns);
        if (columns.Length == 0)
            throw new ArgumentException("At least one column pair is required.", nameof(columns));
        return columns.Select(c => (c.OutputColumnName, c.InputColumnName)).ToArray();
    }
}
