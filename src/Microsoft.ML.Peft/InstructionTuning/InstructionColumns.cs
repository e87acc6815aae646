using Microsoft.ML.Data;

namespace Microsoft.ML.Peft.InstructionTuning;

/// <summary>
/// The Text columns instruction tuning reads (instruction, optional input, response) and the one it adds, with the
/// checks that run before any work; errors name the column and the type found.
/// </summary>
internal sealed record InstructionColumns(string Instruction, string? Input, string Response, string Generated)
{
    public static InstructionColumns From(CausalLmFineTuningEstimator.Options options)
    {
        static string Name(string? value, string what) =>
            string.IsNullOrWhiteSpace(value) ? throw new ArgumentException($"{what} must be a column name", what) : value;

        return new InstructionColumns(
            Name(options.InstructionColumnName, nameof(options.InstructionColumnName)),
            options.InputColumnName is null ? null : Name(options.InputColumnName, nameof(options.InputColumnName)),
            Name(options.ResponseColumnName, nameof(options.ResponseColumnName)),
            Name(options.GeneratedColumnName, nameof(options.GeneratedColumnName)));
    }

    /// <summary>The prompt columns (instruction, then input if any).</summary>
    public IEnumerable<string> PromptColumns => Input is null ? [Instruction] : [Instruction, Input];

    /// <summary>Checks a data-free shape: the prompt columns and (for Fit) the response must be Text scalars.</summary>
    public void Check(SchemaShape input, bool needResponse)
    {
        ArgumentNullException.ThrowIfNull(input);
        foreach (string name in needResponse ? PromptColumns.Append(Response) : PromptColumns)
        {
            var column = input.LastOrDefault(c => c.Name == name);
            if (column.Name is null) throw new ArgumentOutOfRangeException(nameof(input), $"Could not find the text column '{name}' in the input schema.");
            if (column.Kind != SchemaShape.Column.VectorKind.Scalar || column.IsKey || column.ItemType is not TextDataViewType)
                throw new ArgumentOutOfRangeException(nameof(input), $"The text column '{name}' in the input schema must be Text (string), but it is {column.ItemType}{(column.Kind == SchemaShape.Column.VectorKind.Scalar ? "" : " (vector)")}.");
        }
    }

    /// <summary>Binds the prompt columns (and the response when <paramref name="needResponse"/>) of a schema.</summary>
    public (DataViewSchema.Column Instruction, DataViewSchema.Column? Input, DataViewSchema.Column? Response) Bind(DataViewSchema schema, string what, bool needResponse)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var instruction = BindText(schema, Instruction, what);
        var input = Input is null ? (DataViewSchema.Column?)null : BindText(schema, Input, what);
        var response = needResponse ? BindText(schema, Response, what) : (DataViewSchema.Column?)null;
        return (instruction, input, response);
    }

    /// <summary>Reads every row's (instruction, input, output); null text reads as "".</summary>
    public List<InstructionExample> Read(IDataView data, string what)
    {
        var (instruction, input, response) = Bind(data.Schema, what, needResponse: true);
        var needed = new List<DataViewSchema.Column> { instruction, response!.Value };
        if (input is { } i) needed.Add(i);
        using var cursor = data.GetRowCursor(needed);
        var getInstruction = cursor.GetGetter<ReadOnlyMemory<char>>(instruction);
        var getInput = input is { } c ? cursor.GetGetter<ReadOnlyMemory<char>>(c) : null;
        var getResponse = cursor.GetGetter<ReadOnlyMemory<char>>(response.Value);
        var rows = new List<InstructionExample>();
        while (cursor.MoveNext())
            rows.Add(new InstructionExample(LabeledTexts.ReadText(getInstruction), getInput is null ? "" : LabeledTexts.ReadText(getInput), LabeledTexts.ReadText(getResponse)));
        return rows;
    }

    private static DataViewSchema.Column BindText(DataViewSchema schema, string name, string what)
    {
        var column = schema.GetColumnOrNull(name) ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Could not find the text column '{name}' in {what}.");
        if (column.Type is not TextDataViewType)
            throw new ArgumentOutOfRangeException(nameof(schema), $"The text column '{name}' in {what} must be Text (string), but it is {column.Type}.");
        return column;
    }
}
