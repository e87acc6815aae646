namespace Microsoft.ML.Data;

/// <summary>Maps one input row to one output row; bound to an input schema. Used by the prediction engine.</summary>
public interface IRowToRowMapper
{
    /// <summary>The input schema the mapper is bound to.</summary>
    DataViewSchema InputSchema { get; }

    /// <summary>The output schema: passed-through input columns followed by the added ones.</summary>
    DataViewSchema OutputSchema { get; }

    /// <summary>The input columns needed to compute <paramref name="dependingColumns"/> (columns of <see cref="OutputSchema"/>).</summary>
    IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns);

    /// <summary>A lazy row over <see cref="OutputSchema"/> computed from <paramref name="input"/>; only <paramref name="activeColumns"/> are active.</summary>
    DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns);
}
