using Microsoft.ML.Data;

namespace Microsoft.ML.Peft;

/// <summary>An input row with prediction columns appended (view cursors and row mappers).</summary>
internal sealed class AppendedPredictionRow<TPrediction> : DataViewRow
{
    private readonly DataViewRow input;
    private readonly int inputCount;
    private readonly Delegate?[] getters;

    public AppendedPredictionRow(DataViewRow input, DataViewSchema outputSchema, bool[] activeAppended, IAppendedColumns<TPrediction> columns, Func<TPrediction> current)
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
