using Microsoft.ML.Data;

namespace Microsoft.ML.Peft;

/// <summary>
/// The lazy output of <see cref="PeftTextClassificationTransformer.Transform"/>: the input's rows with the prediction
/// columns appended. Predictions are computed in batches: when a cursor first needs row p, a second cursor over the
/// text columns reads rows p, p+1, … (up to the scoring batch size) and scores them in one forward pass. This relies on
/// two unshuffled cursors over a view visiting the same rows in the same order, as ML.NET views do; shuffled cursors
/// (a non-null <see cref="Random"/>) score row by row instead.
/// </summary>
internal sealed class ScoredDataView : IDataView
{
    private readonly IDataView input;
    private readonly ClassifierScorer scorer;
    private readonly PredictionColumns predictions;
    private readonly BoundColumns texts;

    public ScoredDataView(IDataView input, ClassifierScorer scorer, PredictionColumns predictions, BoundColumns texts)
    {
        this.input = input;
        this.scorer = scorer;
        this.predictions = predictions;
        this.texts = texts;
        Schema = predictions.OutputSchema(input.Schema);
    }

    public DataViewSchema Schema { get; }

    /// <summary>The classifier that produced this view (a following <see cref="LaplaceCalibrator"/> finds it here).</summary>
    internal PeftTextClassificationTransformer? Source { get; init; }

    public bool CanShuffle => input.CanShuffle;

    public long? GetRowCount() => input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        ArgumentNullException.ThrowIfNull(columnsNeeded);
        int inputCount = input.Schema.Count;
        var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
        var active = Enumerable.Range(inputCount, predictions.Count).Select(needed.Contains).ToArray();
        var inputColumns = needed.Where(i => i < inputCount).Select(i => input.Schema[i]).ToList();
        bool scoring = active.Any(a => a);
        if (scoring && rand is not null) inputColumns.AddRange(texts.Texts);
        var cursor = input.GetRowCursor(inputColumns.DistinctBy(c => c.Index), rand);
        Func<float[]> logits = !scoring ? () => throw new InvalidOperationException("no prediction column is active")
            : rand is null ? new BatchedLogits(input, texts, scorer, cursor).Current
            : new RowLogits(cursor, texts, scorer).Current;
        return new Cursor(cursor, new AppendedPredictionRow<float[]>(cursor, Schema, active, predictions, logits));
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    /// <summary>Logits of the main cursor's current row, scored ahead in batches by a second cursor.</summary>
    private sealed class BatchedLogits(IDataView input, BoundColumns texts, ClassifierScorer scorer, DataViewRow main)
    {
        private DataViewRowCursor? ahead;
        private ValueGetter<ReadOnlyMemory<char>>? text1;
        private ValueGetter<ReadOnlyMemory<char>>? text2;
        private long bufferStart = -1;
        private float[][] buffer = [];

        public float[] Current()
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
            buffer = scorer.Logits(first, second);
            bufferStart = position;
            return buffer[0];
        }
    }

    /// <summary>Logits of the current row, scored alone from its own text columns (cached per position).</summary>
    internal sealed class RowLogits
    {
        private readonly ClassifierScorer scorer;
        private readonly ValueGetter<ReadOnlyMemory<char>> text1;
        private readonly ValueGetter<ReadOnlyMemory<char>>? text2;
        private string? cachedText1;
        private string? cachedText2;
        private float[] cached = [];

        public RowLogits(DataViewRow row, BoundColumns texts, ClassifierScorer scorer)
        {
            this.scorer = scorer;
            text1 = row.GetGetter<ReadOnlyMemory<char>>(row.Schema[texts.Sentence1.Index]);
            text2 = texts.Sentence2 is { } s2 ? row.GetGetter<ReadOnlyMemory<char>>(row.Schema[s2.Index]) : null;
        }

        public float[] Current()
        {
            // Keyed by the texts, not the position: a prediction engine's row changes content without moving, and the
            // Score and PredictedLabel getters of one row should share one forward pass.
            string first = LabeledTexts.ReadText(text1);
            string? second = text2 is null ? null : LabeledTexts.ReadText(text2);
            if (cachedText1 == first && cachedText2 == second) return cached;
            cached = scorer.Logits([first], second is null ? null : [second])[0];
            cachedText1 = first;
            cachedText2 = second;
            return cached;
        }
    }

    private sealed class Cursor(DataViewRowCursor input, AppendedPredictionRow<float[]> row) : DataViewRowCursor
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
