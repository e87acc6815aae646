namespace Microsoft.ML.Data;

/// <summary>The type of a column loaded by <see cref="TextLoader"/>.</summary>
public enum DataKind : byte
{
    /// <summary>sbyte.</summary>
    SByte = 1,

    /// <summary>byte.</summary>
    Byte = 2,

    /// <summary>short.</summary>
    Int16 = 3,

    /// <summary>ushort.</summary>
    UInt16 = 4,

    /// <summary>int.</summary>
    Int32 = 5,

    /// <summary>uint.</summary>
    UInt32 = 6,

    /// <summary>long.</summary>
    Int64 = 7,

    /// <summary>ulong.</summary>
    UInt64 = 8,

    /// <summary>float.</summary>
    Single = 9,

    /// <summary>double.</summary>
    Double = 10,

    /// <summary>Text.</summary>
    String = 11,

    /// <summary>bool.</summary>
    Boolean = 12,

    /// <summary>TimeSpan.</summary>
    TimeSpan = 13,

    /// <summary>DateTime.</summary>
    DateTime = 14,

    /// <summary>DateTimeOffset.</summary>
    DateTimeOffset = 15,
}

/// <summary>The number of values of a key column loaded by <see cref="TextLoader"/>.</summary>
public sealed class KeyCount
{
    /// <summary>An unknown count.</summary>
    public KeyCount()
    {
    }

    /// <summary>A key with <paramref name="count"/> values.</summary>
    public KeyCount(ulong count)
    {
        Count = count;
    }

    /// <summary>The count, if known.</summary>
    public ulong? Count;
}

/// <summary>A set of streams (e.g. files) to load data from.</summary>
public interface IMultiStreamSource
{
    /// <summary>The number of streams.</summary>
    int Count { get; }

    /// <summary>The path of stream <paramref name="index"/>, or null.</summary>
    string? GetPathOrNull(int index);

    /// <summary>Opens stream <paramref name="index"/>.</summary>
    Stream Open(int index);

    /// <summary>Opens stream <paramref name="index"/> as text.</summary>
    TextReader OpenTextReader(int index);
}

/// <summary>Files on disk as an <see cref="IMultiStreamSource"/>.</summary>
public sealed class MultiFileSource : IMultiStreamSource
{
    private readonly string[] _paths;

    /// <summary>A source over <paramref name="paths"/>.</summary>
    public MultiFileSource(params string[] paths)
    {
        _paths = paths?.Where(p => p != null).ToArray() ?? Array.Empty<string>();
    }

    /// <inheritdoc/>
    public int Count => _paths.Length;

    /// <inheritdoc/>
    public string? GetPathOrNull(int index) => _paths[index];

    /// <inheritdoc/>
    public Stream Open(int index) => File.OpenRead(_paths[index]);

    /// <inheritdoc/>
    public TextReader OpenTextReader(int index) => new StreamReader(Open(index));
}
