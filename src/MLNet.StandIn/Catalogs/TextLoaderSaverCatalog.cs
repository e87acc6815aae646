using Microsoft.ML.Data;

namespace Microsoft.ML;

/// <summary>Loading delimited text files.</summary>
public static class TextLoaderSaverCatalog
{
    /// <summary>Loads a file whose columns are described by the [LoadColumn] attributes of <typeparamref name="TInput"/>.</summary>
    public static IDataView LoadFromTextFile<TInput>(this DataOperationsCatalog catalog, string path, char separatorChar = '\t', bool hasHeader = false,
        bool allowQuoting = false, bool trimWhitespace = false, bool allowSparse = false)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        CheckPath(path);
        return TextLoader.CreateFromType(typeof(TInput), separatorChar, hasHeader, allowQuoting, trimWhitespace, allowSparse).Load(new MultiFileSource(path));
    }

    /// <summary>Loads a file with the columns of <typeparamref name="TInput"/> and the other settings of <paramref name="options"/>.</summary>
    public static IDataView LoadFromTextFile<TInput>(this DataOperationsCatalog catalog, string path, TextLoader.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        CheckPath(path);
        return TextLoader.CreateFromType(typeof(TInput), options).Load(new MultiFileSource(path));
    }

    /// <summary>Loads a file with explicitly described columns.</summary>
    public static IDataView LoadFromTextFile(this DataOperationsCatalog catalog, string path, TextLoader.Column[] columns, char separatorChar = '\t',
        bool hasHeader = false, bool allowQuoting = false, bool trimWhitespace = false, bool allowSparse = false)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        CheckPath(path);
        return catalog.CreateTextLoader(columns, separatorChar, hasHeader, null, allowQuoting, trimWhitespace, allowSparse).Load(new MultiFileSource(path));
    }

    /// <summary>A loader for the columns of <typeparamref name="TInput"/>.</summary>
    public static TextLoader CreateTextLoader<TInput>(this DataOperationsCatalog catalog, char separatorChar = '\t', bool hasHeader = false,
        IMultiStreamSource? dataSample = null, bool allowQuoting = false, bool trimWhitespace = false, bool allowSparse = false)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return TextLoader.CreateFromType(typeof(TInput), separatorChar, hasHeader, allowQuoting, trimWhitespace, allowSparse);
    }

    /// <summary>A loader for explicitly described columns.</summary>
    public static TextLoader CreateTextLoader(this DataOperationsCatalog catalog, TextLoader.Column[] columns, char separatorChar = '\t',
        bool hasHeader = false, IMultiStreamSource? dataSample = null, bool allowQuoting = false, bool trimWhitespace = false, bool allowSparse = false)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(columns);
        return new TextLoader(new TextLoader.Options
        {
            Columns = columns,
            Separators = new[] { separatorChar },
            HasHeader = hasHeader,
            AllowQuoting = allowQuoting,
            TrimWhitespace = trimWhitespace,
            AllowSparse = allowSparse,
        });
    }

    /// <summary>A loader with the given options.</summary>
    public static TextLoader CreateTextLoader(this DataOperationsCatalog catalog, TextLoader.Options options, IMultiStreamSource? dataSample = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new TextLoader(options);
    }

    private static void CheckPath(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Data file '{path}' not found.", path);
    }
}
