using Microsoft.ML.Internal;

namespace Microsoft.ML.Data;

/// <summary>
/// Loads delimited text (TSV/CSV) lazily: every cursor re-reads the files. Supports a header line, quoted fields
/// ("" escapes a quote), whitespace trimming, scalar and vector columns of the <see cref="DataKind"/> types and keys.
/// Empty fields load as 0 (NaN with <see cref="Options.MissingRealsAsNaNs"/>) or empty text; "?" and "NaN" load as NaN;
/// a value that does not parse is an error naming the file, line and column (ML.NET logs it and loads a missing value).
/// </summary>
public sealed class TextLoader : IDataLoader<IMultiStreamSource>
{
    private readonly Options _options;
    private readonly TextColumnInfo[] _columns;
    private readonly DataViewSchema _schema;

    internal TextLoader(Options options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        if (options.AllowSparse)
            throw new NotSupportedException("The Microsoft.ML stand-in's TextLoader does not read the sparse text format (allowSparse).");
        if (options.Separators == null || options.Separators.Length == 0)
            throw new ArgumentException("TextLoader needs at least one separator.", nameof(options));
        var columns = options.Columns ?? throw new ArgumentException("TextLoader needs columns.", nameof(options));
        _columns = columns.Select(TextColumnInfo.Create).ToArray();
        var builder = new DataViewSchema.Builder();
        foreach (var column in _columns)
            builder.AddColumn(column.Name, column.Type);
        _schema = builder.ToSchema();
    }

    /// <summary>The schema of the loaded data.</summary>
    public DataViewSchema GetOutputSchema() => _schema;

    /// <summary>A lazy view of the rows of <paramref name="input"/>.</summary>
    public IDataView Load(IMultiStreamSource input)
    {
        ArgumentNullException.ThrowIfNull(input);
        for (int i = 0; i < input.Count; i++)
        {
            if (input.GetPathOrNull(i) is string path && !File.Exists(path))
                throw new FileNotFoundException($"Data file '{path}' not found.", path);
        }
        return new TextDataView(input, _options, _columns, _schema);
    }

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        // The stand-in model format does not store loaders; Model.Save(..., loader, ...) is not part of the stand-in.
    }

    /// <summary>A range of source field indices (inclusive).</summary>
    public sealed class Range
    {
        /// <summary>An empty range (set the fields).</summary>
        public Range()
        {
        }

        /// <summary>The single field <paramref name="index"/>.</summary>
        public Range(int index)
            : this(index, index)
        {
        }

        /// <summary>Fields <paramref name="min"/>..<paramref name="max"/> inclusive (to the end of the line when max is null).</summary>
        public Range(int min, int? max)
        {
            if (min < 0)
                throw new ArgumentOutOfRangeException(nameof(min), "Field index must be non-negative.");
            if (max < min)
                throw new ArgumentOutOfRangeException(nameof(max), $"Range end {max} is before its start {min}.");
            Min = min;
            Max = max;
            AutoEnd = max == null;
        }

        /// <summary>First field index.</summary>
        public int Min;

        /// <summary>Last field index (inclusive), or null for "to the end".</summary>
        public int? Max;

        /// <summary>Whether the range extends to the end of each line.</summary>
        public bool AutoEnd;

        /// <summary>Not supported by the stand-in.</summary>
        public bool VariableEnd;

        /// <summary>Not supported by the stand-in.</summary>
        public bool AllOtherColumns;

        /// <summary>Whether a single-field range still produces a vector.</summary>
        public bool ForceVector;
    }

    /// <summary>A column to load: name, type and source fields.</summary>
    public sealed class Column
    {
        /// <summary>An empty column description (set the fields).</summary>
        public Column()
        {
        }

        /// <summary>A scalar column from field <paramref name="index"/>.</summary>
        public Column(string name, DataKind dataKind, int index, KeyCount? keyCount = null)
            : this(name, dataKind, new[] { new Range(index) }, keyCount)
        {
        }

        /// <summary>A vector column from fields <paramref name="minIndex"/>..<paramref name="maxIndex"/> inclusive.</summary>
        public Column(string name, DataKind dataKind, int minIndex, int maxIndex)
            : this(name, dataKind, new[] { new Range(minIndex, maxIndex) })
        {
        }

        /// <summary>A column from the listed ranges (a vector unless a single field).</summary>
        public Column(string name, DataKind dataKind, Range[] source, KeyCount? keyCount = null)
        {
            Name = name;
            DataKind = dataKind;
            Source = source;
            KeyCount = keyCount;
        }

        /// <summary>The column name.</summary>
        public string? Name;

        /// <summary>The item type.</summary>
        public DataKind DataKind { get; set; } = DataKind.Single;

        /// <summary>The source fields.</summary>
        public Range[]? Source;

        /// <summary>For key columns: the number of key values.</summary>
        public KeyCount? KeyCount;
    }

    /// <summary>Loader options.</summary>
    public sealed class Options
    {
        /// <summary>Whether fields may be quoted (a quoted field may contain separators; "" is an escaped quote).</summary>
        public bool AllowQuoting;

        /// <summary>Sparse format; not supported by the stand-in.</summary>
        public bool AllowSparse;

        /// <summary>The number of source fields, if known.</summary>
        public int? InputSize;

        /// <summary>Field separators.</summary>
        public char[] Separators = { '\t' };

        /// <summary>The columns to load.</summary>
        public Column[]? Columns;

        /// <summary>Whether to trim whitespace around fields.</summary>
        public bool TrimWhitespace;

        /// <summary>Whether the first line of each file is a header (skipped).</summary>
        public bool HasHeader;

        /// <summary>Whether to parse with several threads (the stand-in reads on one).</summary>
        public bool UseThreads = true;

        /// <summary>Whether quoted fields may span lines; not supported by the stand-in.</summary>
        public bool ReadMultilines;

        /// <summary>The maximum number of rows to read.</summary>
        public long? MaxRows;

        /// <summary>Whether empty numeric fields load as NaN rather than 0.</summary>
        public bool MissingRealsAsNaNs;

        /// <summary>The quote character.</summary>
        public char EscapeChar = '"';

        /// <summary>The decimal marker ('.' or ',').</summary>
        public char DecimalMarker = '.';
    }

    internal static TextLoader CreateFromType(Type inputType, char separator, bool hasHeader, bool allowQuoting, bool trimWhitespace, bool allowSparse)
        => CreateFromType(inputType, new Options
        {
            Separators = new[] { separator },
            HasHeader = hasHeader,
            AllowQuoting = allowQuoting,
            TrimWhitespace = trimWhitespace,
            AllowSparse = allowSparse,
        });

    /// <summary>A loader for the [LoadColumn] members of <paramref name="inputType"/>, with the other settings of <paramref name="template"/>.</summary>
    internal static TextLoader CreateFromType(Type inputType, Options template)
    {
        var columns = new List<Column>();
        foreach (var member in PocoMembers.Get(inputType, SchemaDefinition.Direction.Write))
        {
            var load = System.Reflection.CustomAttributeExtensions.GetCustomAttribute<LoadColumnAttribute>(member)
                       ?? throw new InvalidOperationException($"Field or property '{inputType.Name}.{member.Name}' is missing the {nameof(LoadColumnAttribute)} attribute.");
            var name = System.Reflection.CustomAttributeExtensions.GetCustomAttribute<ColumnNameAttribute>(member)?.Name ?? member.Name;
            var type = PocoTypes.InferColumnType(member);
            var item = type is VectorDataViewType v ? v.ItemType : (PrimitiveDataViewType)type;
            var ranges = load.Sources.ToArray();
            if (type is VectorDataViewType && ranges.Length == 1 && ranges[0].Min == ranges[0].Max)
                ranges[0].ForceVector = true;
            columns.Add(new Column(name, TextColumnInfo.KindOf(item), ranges, item is KeyDataViewType key ? new KeyCount(key.Count) : null));
        }
        return new TextLoader(new Options
        {
            Columns = columns.ToArray(),
            Separators = template.Separators,
            HasHeader = template.HasHeader,
            AllowQuoting = template.AllowQuoting,
            TrimWhitespace = template.TrimWhitespace,
            AllowSparse = template.AllowSparse,
            MaxRows = template.MaxRows,
            MissingRealsAsNaNs = template.MissingRealsAsNaNs,
            EscapeChar = template.EscapeChar,
            DecimalMarker = template.DecimalMarker,
        });
    }
}
