using Microsoft.ML.Data;

namespace Microsoft.ML.Peft.InstructionTuning;

/// <summary>
/// The lazy output of <see cref="CausalLmFineTuningTransformer.Transform"/>: the input rows plus one Text column with
/// the generated response. A row is generated only when its getter is called (cached for repeated reads of the same
/// prompt), so selecting other columns costs nothing.
/// </summary>
internal sealed class GeneratedTextDataView : IDataView
{
    private readonly IDataView input;
    private readonly CausalLmFineTuningTransformer parent;

    public GeneratedTextDataView(IDataView input, CausalLmFineTuningTransformer parent)
    {
        this.input = input;
        this.parent = parent;
        Schema = parent.GetOutputSchema(input.Schema);
    }

    public DataViewSchema Schema { get; }

    public bool CanShuffle => input.CanShuffle;

    public long? GetRowCount() => input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        ArgumentNullException.ThrowIfNull(columnsNeeded);
        int inputCount = input.Schema.Count;
        var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
        bool generating = needed.Contains(inputCount);
        var inputColumns = needed.Where(i => i < inputCount).Select(i => input.Schema[i]).ToList();
        if (generating) inputColumns.AddRange(parent.BindPrompt(input.Schema));
        var cursor = input.GetRowCursor(inputColumns.DistinctBy(c => c.Index), rand);
        return new Cursor(cursor, new GeneratedTextRow(cursor, Schema, generating, parent));
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor(DataViewRowCursor input, GeneratedTextRow row) : DataViewRowCursor
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

/// <summary>An input row plus the generated column (shared by the view's cursors and the row mapper).</summary>
internal sealed class GeneratedTextRow : DataViewRow
{
    private readonly DataViewRow input;
    private readonly int inputCount;
    private readonly ValueGetter<ReadOnlyMemory<char>>? generated;

    public GeneratedTextRow(DataViewRow input, DataViewSchema outputSchema, bool active, CausalLmFineTuningTransformer parent)
    {
        this.input = input;
        Schema = outputSchema;
        inputCount = input.Schema.Count;
        if (!active) return;
        var columns = parent.BindPrompt(input.Schema);
        var instruction = input.GetGetter<ReadOnlyMemory<char>>(columns[0]);
        var context = columns.Count > 1 ? input.GetGetter<ReadOnlyMemory<char>>(columns[1]) : null;
        (string Instruction, string Input)? cachedKey = null;
        string cachedText = "";
        generated = (ref ReadOnlyMemory<char> value) =>
        {
            // Keyed by the prompt, not the position: a prediction engine's row changes content without moving.
            var key = (LabeledTexts.ReadText(instruction), context is null ? "" : LabeledTexts.ReadText(context));
            if (cachedKey != key)
            {
                cachedText = parent.Generate(key.Item1, key.Item2);
                cachedKey = key;
            }
            value = cachedText.AsMemory();
        };
    }

    public override DataViewSchema Schema { get; }

    public override long Position => input.Position;

    public override long Batch => input.Batch;

    public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();

    public override bool IsColumnActive(DataViewSchema.Column column) =>
        column.Index < inputCount ? input.IsColumnActive(input.Schema[column.Index]) : generated is not null;

    public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
    {
        if (column.Index < inputCount) return input.GetGetter<TValue>(input.Schema[column.Index]);
        return generated as ValueGetter<TValue>
            ?? throw new InvalidOperationException($"column '{column.Name}' is inactive or is not of type {typeof(TValue).Name} (it is Text: ReadOnlyMemory<char>)");
    }
}
