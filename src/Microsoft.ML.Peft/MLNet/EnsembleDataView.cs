using Microsoft.ML.Data;

namespace Microsoft.ML.Peft;

/// <summary>
/// The lazy output of <see cref="EnsembleTextClassificationTransformer.Transform"/>: the input rows plus the ensemble
/// columns. As <see cref="ScoredDataView"/> and <see cref="LaplaceCalibratorDataView"/> do, an unshuffled cursor
/// predicts ahead in batches through a second cursor over the text columns (same rows, same order); a shuffled cursor
/// and the row mapper predict row by row.
/// </summary>
internal sealed class EnsembleDataView : IDataView
{
    private readonly IDataView input;
    private readonly EnsembleScorer scorer;
    private readonly EnsembleColumns columns;
    private readonly BoundColumns texts;

    public EnsembleDataView(IDataView input, EnsembleScorer scorer, EnsembleColumns columns, BoundColumns texts)
    {
        this.input = input;
        this.scorer = scorer;
        this.columns = columns;
        this.texts = texts;
        Schema = columns.OutputSchema(input.Schema);
    }

    public DataViewSchema Schema { get; }

    public bool CanShuffle => input.CanShuffle;

    public long? GetRowCount() => input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        ArgumentNullException.ThrowIfNull(columnsNeeded);
        int inputCount = input.Schema.Count;
        var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
        var active = Enumerable.Range(inputCount, columns.Count).Select(needed.Contains).ToArray();
        var inputColumns = needed.Where(i => i < inputCount).Select(i => input.Schema[i]).ToList();
        bool predicting = active.Any(a => a);
        if (predicting && rand is not null) inputColumns.AddRange(texts.Texts);
        var cursor = input.GetRowCursor(inputColumns.DistinctBy(c => c.Index), rand);
        Func<EnsembleRowPrediction> current = !predicting ? () => throw new InvalidOperationException("no prediction column is active")
            : rand is null ? new AheadPredictions(input, texts, scorer, cursor).Current
            : new RowPredictions(cursor, texts, scorer).Current;
        return new Cursor(cursor, new EnsemblePredictionRow(cursor, Schema, active, columns, current));
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    /// <summary>Predictions of the main cursor's row, computed in batches by a second cursor reading ahead.</summary>
    private sealed class AheadPredictions(IDataView input, BoundColumns texts, EnsembleScorer scorer, DataViewRow main)
    {
        private DataViewRowCursor? ahead;
        private ValueGetter<ReadOnlyMemory<char>>? text1, text2;
        private long bufferStart = -1;
        private EnsembleRowPrediction[] buffer = [];

        public EnsembleRowPrediction Current()
        {
            long position = main.Position;
            if (position < 0) throw new InvalidOperationException("the cursor is not on a row (call MoveNext first)");
            if (position >= bufferStart && position < bufferStart + buffer.Length) return buffer[position - bufferStart];
            if (ahead is null)
            {
                ahead = input.GetRowCursor(texts.Texts);
                text1 = ahead.GetGetter<ReadOnlyMemory<char>>(texts.Sentence1);
                text2 = texts.Sentence2 is { } s2 ? ahead.GetGetter<ReadOnlyMemory<char>>(s2) : null;
            }
            while (ahead.Position < position)
            {
                if (!ahead.MoveNext()) throw new InvalidOperationException($"the input view ended before row {position} on a second pass; it must yield the same rows on every unshuffled cursor");
            }
            if (ahead.Position != position) throw new InvalidOperationException($"rows were requested out of order (row {position} after {ahead.Position})");
            var first = new List<string>(scorer.BatchSize);
            var second = text2 is null ? null : new List<string>(scorer.BatchSize);
            while (true)
            {
                first.Add(LabeledTexts.ReadText(text1!));
                second?.Add(LabeledTexts.ReadText(text2!));
                if (first.Count == scorer.BatchSize || !ahead.MoveNext()) break;
            }
            buffer = scorer.Predict(first, second);
            bufferStart = position;
            return buffer[0];
        }
    }

    /// <summary>The current row predicted alone, cached by its texts (a prediction engine's row changes content in place).</summary>
    internal sealed class RowPredictions
    {
        private readonly EnsembleScorer scorer;
        private readonly ValueGetter<ReadOnlyMemory<char>> text1;
        private readonly ValueGetter<ReadOnlyMemory<char>>? text2;
        private (string First, string? Second)? cachedKey;
        private EnsembleRowPrediction? cached;

        public RowPredictions(DataViewRow row, BoundColumns texts, EnsembleScorer scorer)
        {
            this.scorer = scorer;
            text1 = row.GetGetter<ReadOnlyMemory<char>>(row.Schema[texts.Sentence1.Index]);
            text2 = texts.Sentence2 is { } s2 ? row.GetGetter<ReadOnlyMemory<char>>(row.Schema[s2.Index]) : null;
        }

        public EnsembleRowPrediction Current()
        {
            string first = LabeledTexts.ReadText(text1);
            string? second = text2 is null ? null : LabeledTexts.ReadText(text2);
            if (cached is not null && cachedKey == (first, second)) return cached;
            cached = scorer.Predict([first], second is null ? null : [second])[0];
            cachedKey = (first, second);
            return cached;
        }
    }

    private sealed class Cursor(DataViewRowCursor input, EnsemblePredictionRow row) : DataViewRowCursor
    {
        public override DataViewSchema Schema => row.Schema;

        public override long Position => input.Position;

        public override long Batch => input.Batch;

        public override bool MoveNext() => input.MoveNext();

        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => row.IsColumnActive(column);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => row.GetGetter<TValue>(column);

        protected override void Dispose(bool disposing)
        {
            if (disposing) input.Dispose();
            base.Dispose(disposing);
        }
    }
}

/// <summary>An input row with the ensemble columns appended (view cursors and the row mapper).</summary>
internal sealed class EnsemblePredictionRow : DataViewRow
{
    private readonly DataViewRow input;
    private readonly int inputCount;
    private readonly Delegate?[] getters;

    public EnsemblePredictionRow(DataViewRow input, DataViewSchema outputSchema, bool[] activeAppended, EnsembleColumns columns, Func<EnsembleRowPrediction> current)
    {
        this.input = input;
        Schema = outputSchema;
        inputCount = input.Schema.Count;
        getters = new Delegate?[activeAppended.Length];
        for (int i = 0; i < getters.Length; i++)
        {
            if (activeAppended[i]) getters[i] = columns.MakeGetter(i, current);
        }
    }

    public override DataViewSchema Schema { get; }

    public override long Position => input.Position;

    public override long Batch => input.Batch;

    public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();

    public override bool IsColumnActive(DataViewSchema.Column column) =>
        column.Index < inputCount ? input.IsColumnActive(input.Schema[column.Index]) : getters[column.Index - inputCount] is not null;

    public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
    {
        if (column.Index < inputCount) return input.GetGetter<TValue>(input.Schema[column.Index]);
        return getters[column.Index - inputCount] as ValueGetter<TValue>
            ?? throw new InvalidOperationException($"column '{column.Name}' is inactive or is not of type {typeof(TValue).Name}");
    }
}
