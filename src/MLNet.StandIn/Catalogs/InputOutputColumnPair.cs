namespace Microsoft.ML;

/// <summary>An output column name and the input column it is computed from (the output name when null).</summary>
public sealed class InputOutputColumnPair
{
    /// <summary>Pairs <paramref name="outputColumnName"/> with <paramref name="inputColumnName"/> (default: the same name).</summary>
    public InputOutputColumnPair(string outputColumnName, string? inputColumnName = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputColumnName);
        OutputColumnName = outputColumnName;
        InputColumnName = inputColumnName ?? outputColumnName;
    }

    /// <summary>The input column name.</summary>
    public string InputColumnName { get; }

    /// <summary>The output column name.</summary>
    public string OutputColumnName { get; }
}
