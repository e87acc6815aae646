using Microsoft.ML.Data;

namespace Microsoft.ML.Peft;

/// <summary>
/// The lazy output of a transformer that appends per-row predictions of its texts
/// (<see cref="PeftTextClassificationTransformer.Transform"/>, <see cref="EnsembleTextClassificationTransformer.Transform"/>,
/// <see cref="LaplaceCalibratorTransformer.Transform"/>): the input rows plus the appended columns. When a cursor first
/// needs row p, a second cursor over the text columns reads rows p, p+1, … (up to the predictor's batch size) and predicts
/// them in one call. This relies on two unshuffled cursors over a view visiting the same rows in the same order, as
/// ML.NET views do; a shuffled cursor (a non-null <see cref="Random"/>) and the row mapper predict row by row.
/// </summary>
internal sealed class BatchPredictionDataView<TPrediction> : IDataView
    where TPrediction : class
{
    private readonly IDataView input;
    private readonly IBatchTextPredictor<TPrediction> predictor;
    private readonly IAppendedColumns<TPrediction> columns;
    private readonly BoundColumns texts;

    public BatchPredictionDataView(IDataView input, IBatchTextPredictor<TPrediction> predictor, IAppendedColumns<TPrediction> columns, BoundColumns texts)
    {
        this.input = input;
        this.predictor = predictor;
        this.columns = columns;
        this.texts = texts;
        Schema = columns.OutputSchema(input.Schema);
    }

    public DataViewSchema Schema { get; }

    /// <summary>The transformer that produced this view (a following <see cref="LaplaceCalibrator"/> finds its classifier here).</summary>
    internal ITransformer? Source { get; init; }

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
        Func<TPrediction> current = !predicting ? () => throw new InvalidOperationException("no prediction column is active")
            : rand is null ? new AheadPredictions(input, texts, predictor, cursor).Current
            : new RowPredictions(cursor, texts, predictor).Current;
        return new Cursor(cursor, new AppendedPredictionRow<TPrediction>(cursor, Schema, active, columns, current));
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    /// <summary>Predictions of the main cursor's row, computed in batches by a second cursor reading ahead.</summary>
    private sealed class AheadPredictions(IDataView input, BoundColumns texts, IBatchTextPredictor<TPrediction> predictor, DataViewRow main)
    {
        private DataViewRowCursor? ahead;
        private ValueGetter<ReadOnlyMemory<char>>? text1, text2;
        private long bufferStart = -1;
        private TPrediction[] buffer = [];

        public TPrediction Current()
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
            var first = new List<string>(predictor.BatchSize);
            var second = text2 is null ? null : new List<string>(predictor.BatchSize);
            while (true)
            {
                first.Add(LabeledTexts.ReadText(text1!));
                second?.Add(LabeledTexts.ReadText(text2!));
                if (first.Count == predictor.BatchSize || !ahead.MoveNext()) break;
            }
            buffer = predictor.Predict(first, second);
            bufferStart = position;
            return buffer[0];
        }
    }

    /// <summary>The current row predicted alone, cached by its texts (a prediction engine's row changes content in place).</summary>
    internal sealed class RowPredictions
    {
        private readonly IBatchTextPredictor<TPrediction> predictor;
        private readonly ValueGetter<ReadOnlyMemory<char>> text1;
        private readonly ValueGetter<ReadOnlyMemory<char>>? text2;
        private (string First, string? Second)? cachedKey;
        private TPrediction? cached;

        public RowPredictions(DataViewRow row, BoundColumns texts, IBatchTextPredictor<TPrediction> predictor)
        {
            this.predictor = predictor;
            text1 = row.GetGetter<ReadOnlyMemory<char>>(row.Schema[texts.Sentence1.Index]);
            text2 = texts.Sentence2 is { } s2 ? row.GetGetter<ReadOnlyMemory<char>>(row.Schema[s2.Index]) : null;
        }

        public TPrediction Current()
        {
            string first = LabeledTexts.ReadText(text1);
            string? second = text2 is null ? null : LabeledTexts.ReadText(text2);
            if (cached is not null && cachedKey == (first, second)) return cached;
            cached = predictor.Predict([first], second is null ? null : [second])[0];
            cachedKey = (first, second);
            return cached;
        }
    }

    private sealed class Cursor(DataViewRowCursor input, AppendedPredictionRow<TPrediction> row) : DataViewRowCursor
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
