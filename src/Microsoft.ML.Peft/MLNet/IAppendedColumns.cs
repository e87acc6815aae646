using Microsoft.ML.Data;

namespace Microsoft.ML.Peft;

/// <summary>
/// The columns a transformer appends after its input's, read from one row's prediction
/// (<see cref="PredictionColumns"/>, <see cref="EnsembleColumns"/>, <see cref="LaplaceCalibratorColumns"/>).
/// </summary>
internal interface IAppendedColumns<TPrediction>
{
    /// <summary>Number of appended columns.</summary>
    int Count { get; }

    /// <summary>The input schema with the appended columns after it.</summary>
    DataViewSchema OutputSchema(DataViewSchema input);

    /// <summary>A <c>ValueGetter</c> of appended column <paramref name="index"/> (0-based among the appended ones).</summary>
    Delegate MakeGetter(int index, Func<TPrediction> row);
}
