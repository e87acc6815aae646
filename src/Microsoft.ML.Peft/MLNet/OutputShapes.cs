using Microsoft.ML.Data;

namespace Microsoft.ML.Peft;

/// <summary>
/// The output <see cref="SchemaShape"/> of a LoRA text classifier, built with public estimators only: an extension
/// cannot construct <c>SchemaShape.Column</c> (its constructor is internal to ML.NET), so columns of the right shape
/// are obtained from estimators' own <c>GetOutputSchema</c> on a private <see cref="MLContext"/>.
/// </summary>
internal static class OutputShapes
{
    public static SchemaShape Build(SchemaShape input, TextClassificationColumns columns)
    {
        var shapes = new MLContext();
        if (columns.Kind == ClassificationKind.Multiclass)
        {
            // PredictedLabel has the label's shape (Key<UInt32> with its KeyValues); MapKeyToVector of the label gives a
            // known-size Vector<Single>, the shape of Score.
            var withPrediction = shapes.Transforms.CopyColumns(columns.PredictedLabel, columns.Label).GetOutputSchema(input);
            return shapes.Transforms.Conversion.MapKeyToVector(columns.Score, columns.Label).GetOutputSchema(withPrediction);
        }
        // Binary: a CustomMapping's output shape is its output class's members, renamed by a SchemaDefinition.
        var output = SchemaDefinition.Create(typeof(BinaryPrediction));
        output[nameof(BinaryPrediction.Score)].ColumnName = columns.Score;
        output[nameof(BinaryPrediction.Probability)].ColumnName = columns.Probability;
        output[nameof(BinaryPrediction.PredictedLabel)].ColumnName = columns.PredictedLabel;
        return shapes.Transforms.CustomMapping<NoInput, BinaryPrediction>((_, _) => { }, contractName: null, outputSchemaDefinition: output)
            .GetOutputSchema(input);
    }

    /// <summary>A row type without columns: the binary shape needs no input.</summary>
    internal sealed class NoInput
    {
    }

    /// <summary>The binary output columns' types.</summary>
    internal sealed class BinaryPrediction
    {
        public float Score { get; set; }

        public float Probability { get; set; }

        public bool PredictedLabel { get; set; }
    }
}
