using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>The <see cref="IRowToRowMapper"/> of a <see cref="ColumnBinding"/>.</summary>
internal sealed class BoundRowMapper : IRowToRowMapper
{
    private readonly ColumnBinding _binding;

    public BoundRowMapper(ColumnBinding binding)
    {
        _binding = binding;
    }

    public DataViewSchema InputSchema => _binding.InputSchema;

    public DataViewSchema OutputSchema => _binding.OutputSchema;

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var outputMask = RowGetters.ActiveMask(OutputSchema, dependingColumns);
        return RowGetters.Selected(InputSchema, InputMask(outputMask)).ToArray();
    }

    /// <summary>Which input columns are needed to serve the output columns in <paramref name="outputMask"/>.</summary>
    public bool[] InputMask(bool[] outputMask)
    {
        int inputCount = InputSchema.Count;
        var inputMask = new bool[inputCount];
        for (int i = 0; i < outputMask.Length; i++)
        {
            if (!outputMask[i])
                continue;
            if (i < inputCount)
                inputMask[i] = true;
            else
            {
                foreach (int dependency in _binding.GetDependencies(i - inputCount))
                    inputMask[dependency] = true;
            }
        }
        return inputMask;
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Schema.Count != InputSchema.Count)
            throw new ArgumentException($"The input row has {input.Schema.Count} columns but the mapper was bound to a schema of {InputSchema.Count}.", nameof(input));
        return new MappedRow(_binding, input, RowGetters.ActiveMask(OutputSchema, activeColumns));
    }
}

/// <summary>A row over a binding's output schema: input columns pass through, added columns are computed lazily.</summary>
internal class MappedRow : DataViewRow
{
    private readonly DataViewRow _input;
    private readonly bool[] _active;
    private readonly Delegate?[] _addedGetters;
    private readonly int _inputCount;

    public MappedRow(ColumnBinding binding, DataViewRow input, bool[] active)
    {
        _input = input;
        _active = active;
        Schema = binding.OutputSchema;
        _inputCount = binding.InputSchema.Count;
        _addedGetters = new Delegate?[binding.AddedColumns.Count];
        for (int i = 0; i < _addedGetters.Length; i++)
        {
            if (active[_inputCount + i])
                _addedGetters[i] = binding.MakeGetter(input, i);
        }
    }

    public override DataViewSchema Schema { get; }

    public override long Position => _input.Position;

    public override long Batch => _input.Batch;

    public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

    public override bool IsColumnActive(DataViewSchema.Column column)
    {
        RowGetters.CheckColumnOf(Schema, column, nameof(column));
        return _active[column.Index];
    }

    public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
    {
        RowGetters.CheckColumnOf(Schema, column, nameof(column));
        if (!_active[column.Index])
            throw RowGetters.InactiveColumn(column);
        RowGetters.CheckValueType<TValue>(Schema[column.Index]);
        if (column.Index < _inputCount)
            return _input.GetGetter<TValue>(_input.Schema[column.Index]);
        return (ValueGetter<TValue>)_addedGetters[column.Index - _inputCount]!;
    }
}
