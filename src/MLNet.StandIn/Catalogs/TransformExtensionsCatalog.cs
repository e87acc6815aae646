using Microsoft.ML.Transforms;

namespace Microsoft.ML;

/// <summary>Column copying and concatenation.</summary>
public static class TransformExtensionsCatalog
{
    /// <summary>Copies <paramref name="inputColumnName"/> to <paramref name="outputColumnName"/>.</summary>
    public static ColumnCopyingEstimator CopyColumns(this TransformsCatalog catalog, string outputColumnName, string inputColumnName)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrEmpty(outputColumnName);
        ArgumentException.ThrowIfNullOrEmpty(inputColumnName);
        return new ColumnCopyingEstimator(new[] { (outputColumnName, inputColumnName) });
    }

    /// <summary>Copies several columns.</summary>
    public static ColumnCopyingEstimator CopyColumns(this TransformsCatalog catalog, InputOutputColumnPair[] columns)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new ColumnCopyingEstimator(ConversionsExtensionsCatalog.Pairs(columns));
    }

    /// <summary>Concatenates <paramref name="inputColumnNames"/> into the vector column <paramref name="outputColumnName"/>.</summary>
    public static ColumnConcatenatingEstimator Concatenate(this TransformsCatalog catalog, string outputColumnName, params string[] inputColumnNames)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new ColumnConcatenatingEstimator(outputColumnName, inputColumnNames);
    }
}
