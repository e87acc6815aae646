using Microsoft.ML.Data;
using Microsoft.ML.Internal;

namespace Microsoft.ML;

/// <summary>Loading data from objects and files, converting views back to objects, splitting, shuffling and caching.</summary>
public sealed class DataOperationsCatalog
{
    internal MLContext Context { get; }

    internal DataOperationsCatalog(MLContext context)
    {
        Context = context;
    }

    /// <summary>A train set and a test set.</summary>
    public struct TrainTestData
    {
        /// <summary>The training rows.</summary>
        public readonly IDataView TrainSet;

        /// <summary>The test rows.</summary>
        public readonly IDataView TestSet;

        internal TrainTestData(IDataView trainSet, IDataView testSet)
        {
            TrainSet = trainSet;
            TestSet = testSet;
        }
    }

    /// <summary>A lazy view over <paramref name="data"/> (re-enumerated by every cursor); columns follow the public members of <typeparamref name="TRow"/>.</summary>
    public IDataView LoadFromEnumerable<TRow>(IEnumerable<TRow> data, SchemaDefinition? schemaDefinition = null)
        where TRow : class
        => new EnumerableDataView<TRow>(data, schemaDefinition);

    /// <summary>A lazy view over <paramref name="data"/> with the column types and annotations of <paramref name="schema"/>.</summary>
    public IDataView LoadFromEnumerable<TRow>(IEnumerable<TRow> data, DataViewSchema schema)
        where TRow : class
        => new EnumerableDataView<TRow>(data, schema);

    /// <summary>
    /// Lazily converts rows to <typeparamref name="TRow"/> objects (text → string, vectors → arrays, keys → uint).
    /// With <paramref name="reuseRowObject"/> the same object is refilled at each step.
    /// </summary>
    public IEnumerable<TRow> CreateEnumerable<TRow>(IDataView data, bool reuseRowObject, bool ignoreMissingColumns = false,
        SchemaDefinition? schemaDefinition = null)
        where TRow : class, new()
    {
        ArgumentNullException.ThrowIfNull(data);
        var definition = schemaDefinition ?? SchemaDefinition.Create(typeof(TRow), SchemaDefinition.Direction.Write);
        var bindings = new List<(DataViewSchema.Column Column, System.Reflection.MemberInfo Member)>();
        foreach (var column in definition)
        {
            var member = PocoMembers.Find(typeof(TRow), column.MemberName);
            var dataColumn = data.Schema.GetColumnOrNull(column.ColumnName);
            if (dataColumn == null)
            {
                if (ignoreMissingColumns)
                    continue;
                throw new ArgumentOutOfRangeException(nameof(data), $"Column '{column.ColumnName}' not found in the data view (needed by {typeof(TRow).Name}.{column.MemberName}).");
            }
            var memberType = PocoMembers.MemberType(member);
            if (!PocoWriter.CanAssign(memberType, dataColumn.Value.Type))
                throw new InvalidOperationException(
                    $"Can't bind the IDataView column '{dataColumn.Value.Name}' of type '{dataColumn.Value.Type}' to field or property '{member.Name}' of type '{memberType}'.");
            bindings.Add((dataColumn.Value, member));
        }
        return Enumerate<TRow>(data, bindings, reuseRowObject);
    }

    private static IEnumerable<TRow> Enumerate<TRow>(IDataView data, List<(DataViewSchema.Column Column, System.Reflection.MemberInfo Member)> bindings, bool reuse)
        where TRow : class, new()
    {
        using var cursor = data.GetRowCursor(bindings.Select(b => b.Column));
        var assigners = bindings.Select(b => PocoWriter.CreateAssigner<TRow>(cursor, b.Column, b.Member)).ToArray();
        TRow? shared = null;
        while (cursor.MoveNext())
        {
            var row = reuse ? shared ??= new TRow() : new TRow();
            foreach (var assign in assigners)
                assign(row);
            yield return row;
        }
    }

    /// <summary>A view that is read into memory on first use; later passes (and shuffled cursors) are served from memory.</summary>
    public IDataView Cache(IDataView input, params string[] columnsToPrefetch)
    {
        ArgumentNullException.ThrowIfNull(input);
        foreach (var name in columnsToPrefetch ?? Array.Empty<string>())
            SchemaErrors.Find(input.Schema, "prefetch", name);
        return new CachedDataView(input);
    }

    /// <summary>Keeps the rows whose numeric <paramref name="columnName"/> is in [<paramref name="lowerBound"/>, <paramref name="upperBound"/>).</summary>
    public IDataView FilterRowsByColumn(IDataView input, string columnName, double lowerBound = double.NegativeInfinity, double upperBound = double.PositiveInfinity)
    {
        ArgumentNullException.ThrowIfNull(input);
        var column = SchemaErrors.Find(input.Schema, "filter", columnName);
        if (column.Type != NumberDataViewType.Single && column.Type != NumberDataViewType.Double)
            throw SchemaErrors.Mismatch(nameof(input), "filter", columnName, "Single or Double", column.Type.ToString()!);
        if (!(lowerBound < upperBound))
            throw new ArgumentOutOfRangeException(nameof(upperBound), $"upperBound ({upperBound}) must be greater than lowerBound ({lowerBound}).");
        return new RowSelectionDataView(input, cursor =>
        {
            Func<double> read = column.Type == NumberDataViewType.Single
                ? ReadAsDouble(cursor.GetGetter<float>(column))
                : ReadAsDouble(cursor.GetGetter<double>(column));
            return () =>
            {
                double value = read();
                return value >= lowerBound && value < upperBound ? RowDecision.Keep : RowDecision.Skip;
            };
        }, new[] { column.Index }, () => null);
    }

    private static Func<double> ReadAsDouble(ValueGetter<float> getter)
    {
        float value = 0;
        return () => { getter(ref value); return value; };
    }

    private static Func<double> ReadAsDouble(ValueGetter<double> getter)
    {
        double value = 0;
        return () => { getter(ref value); return value; };
    }

    /// <summary>
    /// Shuffles rows with a pool of <paramref name="shufflePoolSize"/> rows (after randomly ordering the source when
    /// <paramref name="shuffleSource"/>). The order is fixed by <paramref name="seed"/> (or drawn from the context).
    /// </summary>
    public IDataView ShuffleRows(IDataView input, int? seed = null, int shufflePoolSize = 1000, bool shuffleSource = true)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (shufflePoolSize <= 0)
            throw new ArgumentOutOfRangeException(nameof(shufflePoolSize), $"shufflePoolSize must be positive, got {shufflePoolSize}.");
        return new ShuffledDataView(input, seed ?? Context.NextSeed(), shufflePoolSize, shuffleSource);
    }

    /// <summary>All rows but the first <paramref name="count"/>.</summary>
    public IDataView SkipRows(IDataView input, long count)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (count < 0)
            throw new ArgumentOutOfRangeException(nameof(count), "count must be non-negative.");
        return new RowSelectionDataView(input, cursor => () => cursor.Position < count ? RowDecision.Skip : RowDecision.Keep,
            Array.Empty<int>(), () => input.GetRowCount() is long n ? Math.Max(0, n - count) : null);
    }

    /// <summary>The first <paramref name="count"/> rows (reading stops after them).</summary>
    public IDataView TakeRows(IDataView input, long count)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (count < 0)
            throw new ArgumentOutOfRangeException(nameof(count), "count must be non-negative.");
        return new RowSelectionDataView(input, cursor => () => cursor.Position < count ? RowDecision.Keep : RowDecision.Stop,
            Array.Empty<int>(), () => input.GetRowCount() is long n ? Math.Min(n, count) : null);
    }

    /// <summary>
    /// Splits rows at random into a train and a test set (about <paramref name="testFraction"/> of the rows in the test
    /// set). Rows with equal values in <paramref name="samplingKeyColumnName"/> land in the same set. The split is fixed by
    /// <paramref name="seed"/>, else by the context's seed.
    /// </summary>
    public TrainTestData TrainTestSplit(IDataView data, double testFraction = 0.1, string? samplingKeyColumnName = null, int? seed = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!(testFraction > 0 && testFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(testFraction), $"testFraction must be in (0, 1), got {testFraction}.");
        var sampler = new SplitSampler(data, samplingKeyColumnName, SplitSeed(seed));
        return new TrainTestData(sampler.Range(testFraction, 1.0), sampler.Range(0.0, testFraction));
    }

    /// <summary>
    /// Splits rows at random into <paramref name="numberOfFolds"/> folds; fold i's test set is the i-th part and its train
    /// set is the rest. Equal sampling keys stay in one part.
    /// </summary>
    public IReadOnlyList<TrainTestData> CrossValidationSplit(IDataView data, int numberOfFolds = 5, string? samplingKeyColumnName = null, int? seed = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (numberOfFolds < 2)
            throw new ArgumentOutOfRangeException(nameof(numberOfFolds), $"numberOfFolds must be at least 2, got {numberOfFolds}.");
        var sampler = new SplitSampler(data, samplingKeyColumnName, SplitSeed(seed));
        var folds = new TrainTestData[numberOfFolds];
        for (int i = 0; i < numberOfFolds; i++)
        {
            double lo = (double)i / numberOfFolds, hi = (double)(i + 1) / numberOfFolds;
            folds[i] = new TrainTestData(sampler.Outside(lo, hi), sampler.Range(lo, hi));
        }
        return folds;
    }

    // ML.NET uses the explicit seed, else the context's seed; an unseeded context still splits deterministically.
    private int SplitSeed(int? seed) => seed ?? Context.Seed ?? 42;
}
