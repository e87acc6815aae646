using Microsoft.ML.Data;

namespace Microsoft.ML.Peft;

/// <summary>
/// Column names and task kind of a PEFT text classifier, with the checks that run before any work: on a
/// <see cref="SchemaShape"/> (estimator chains) and on a <see cref="DataViewSchema"/> (Fit, Transform). Errors name the
/// column, the expected type and the type found.
/// </summary>
internal sealed record TextClassificationColumns(
    ClassificationKind Kind, string Label, string Sentence1, string? Sentence2, string Score, string PredictedLabel, string Probability)
{
    public static TextClassificationColumns From(TextClassificationTrainerOptions options, ClassificationKind kind)
    {
        static string Name(string? value, string what) =>
            string.IsNullOrWhiteSpace(value) ? throw new ArgumentException($"{what} must be a column name", what) : value;

        var columns = new TextClassificationColumns(kind,
            Name(options.LabelColumnName, nameof(options.LabelColumnName)),
            Name(options.Sentence1ColumnName, nameof(options.Sentence1ColumnName)),
            options.Sentence2ColumnName is null ? null : Name(options.Sentence2ColumnName, nameof(options.Sentence2ColumnName)),
            Name(options.ScoreColumnName, nameof(options.ScoreColumnName)),
            Name(options.PredictionColumnName, nameof(options.PredictionColumnName)),
            Name(options.ProbabilityColumnName, nameof(options.ProbabilityColumnName)));
        var outputs = kind == ClassificationKind.Binary ? new[] { columns.Score, columns.Probability, columns.PredictedLabel } : [columns.Score, columns.PredictedLabel];
        if (outputs.Distinct(StringComparer.Ordinal).Count() != outputs.Length)
            throw new ArgumentException($"the output columns must have distinct names, got {string.Join(", ", outputs)}", nameof(options));
        return columns;
    }

    /// <summary>The expected label type, in words.</summary>
    public string LabelTypeText => Kind == ClassificationKind.Binary
        ? "Boolean"
        : "Key<UInt32> (map the label with mlContext.Transforms.Conversion.MapValueToKey)";

    /// <summary>Checks a data-free input shape (used by <c>GetOutputSchema</c>).</summary>
    public void Check(SchemaShape input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var label = Find(input, Label, "label");
        bool labelOk = Kind == ClassificationKind.Binary
            ? label.Kind == SchemaShape.Column.VectorKind.Scalar && !label.IsKey && label.ItemType is BooleanDataViewType
            : label.Kind == SchemaShape.Column.VectorKind.Scalar && label.IsKey && label.ItemType.RawType == typeof(uint);
        if (!labelOk) throw Mismatch("label", Label, LabelTypeText, ShapeText(label));
        CheckText(input, Sentence1);
        if (Sentence2 is not null) CheckText(input, Sentence2);
    }

    /// <summary>Binds and checks the input columns of a schema (used by Fit, Transform and the row mapper).</summary>
    public BoundColumns Bind(DataViewSchema schema, string what, bool needLabel)
    {
        ArgumentNullException.ThrowIfNull(schema);
        DataViewSchema.Column? label = null;
        if (needLabel)
        {
            var l = schema.GetColumnOrNull(Label) ?? throw Missing("label", Label, what);
            bool ok = Kind == ClassificationKind.Binary
                ? l.Type is BooleanDataViewType
                : l.Type is KeyDataViewType { RawType: var raw, Count: > 0 } && raw == typeof(uint);
            if (!ok) throw Mismatch("label", Label, LabelTypeText, $"{l.Type}", what);
            label = l;
        }
        var text1 = BindText(schema, Sentence1, what);
        var text2 = Sentence2 is null ? (DataViewSchema.Column?)null : BindText(schema, Sentence2, what);
        return new BoundColumns(label, text1, text2);
    }

    private static SchemaShape.Column Find(SchemaShape input, string name, string role)
    {
        var column = input.LastOrDefault(c => c.Name == name);
        return column.Name is null ? throw Missing(role, name, "the input schema") : column;
    }

    private static void CheckText(SchemaShape input, string name)
    {
        var column = Find(input, name, "text");
        if (column.Kind != SchemaShape.Column.VectorKind.Scalar || column.IsKey || column.ItemType is not TextDataViewType)
            throw Mismatch("text", name, "Text (string)", ShapeText(column));
    }

    private static DataViewSchema.Column BindText(DataViewSchema schema, string name, string what)
    {
        var column = schema.GetColumnOrNull(name) ?? throw Missing("text", name, what);
        if (column.Type is not TextDataViewType) throw Mismatch("text", name, "Text (string)", $"{column.Type}", what);
        return column;
    }

    private static string ShapeText(SchemaShape.Column c) =>
        (c.Kind == SchemaShape.Column.VectorKind.Scalar ? "" : c.Kind == SchemaShape.Column.VectorKind.Vector ? "Vector<" : "VarVector<") +
        (c.IsKey ? $"Key<{c.ItemType.RawType.Name}>" : c.ItemType.ToString()) +
        (c.Kind == SchemaShape.Column.VectorKind.Scalar ? "" : ">");

    private static ArgumentOutOfRangeException Missing(string role, string name, string where) =>
        new("inputSchema", $"Could not find the {role} column '{name}' in {where}.");

    private static ArgumentOutOfRangeException Mismatch(string role, string name, string expected, string found, string where = "the input schema") =>
        new("inputSchema", $"The {role} column '{name}' in {where} must be {expected}, but it is {found}.");
}

/// <summary>The input columns of one schema a LoRA text classifier reads.</summary>
internal readonly record struct BoundColumns(DataViewSchema.Column? Label, DataViewSchema.Column Sentence1, DataViewSchema.Column? Sentence2)
{
    /// <summary>The text columns.</summary>
    public IEnumerable<DataViewSchema.Column> Texts => Sentence2 is { } s ? [Sentence1, s] : [Sentence1];
}
