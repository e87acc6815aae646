using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.StandIn.Tests.ThirdParty;

/// <summary>
/// A third-party multiclass trainer written against the PUBLIC Microsoft.ML API only, the way Microsoft.ML.Peft's
/// LoRA trainer must be: it implements <see cref="IEstimator{TTransformer}"/> directly (TrainerEstimatorBase is not
/// derivable outside ML.NET) and obtains its output <see cref="SchemaShape"/> columns from public estimators, because
/// <c>SchemaShape.Column</c> has no public constructor.
/// Model: one centroid per class; Score = softmax(−‖x − c_k‖² / temperature), PredictedLabel = arg-max + 1 (a key).
/// </summary>
internal sealed class NearestCentroidTrainer : IEstimator<NearestCentroidTransformer>
{
    private readonly string _label;
    private readonly string _features;
    private readonly string _score;
    private readonly string _predictedLabel;
    private readonly double _temperature;

    public NearestCentroidTrainer(string labelColumnName = "Label", string featureColumnName = "Features",
        string scoreColumnName = "Score", string predictedLabelColumnName = "PredictedLabel", double temperature = 1)
    {
        _temperature = temperature;
        _label = labelColumnName;
        _features = featureColumnName;
        _score = scoreColumnName;
        _predictedLabel = predictedLabelColumnName;
    }

    /// <summary>
    /// The contract §1 workaround: PredictedLabel has the label's shape (Key&lt;UInt32&gt; with "KeyValues"), so
    /// CopyColumns produces it; MapKeyToVector of the label produces a known-size Vector&lt;Single&gt; for Score. Both run
    /// on a private MLContext because the catalog's context is not reachable through public API.
    /// </summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var label = inputSchema.FirstOrDefault(c => c.Name == _label);
        if (label.Name == null)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Could not find label column '{_label}'");
        if (!label.IsKey || label.Kind != SchemaShape.Column.VectorKind.Scalar || !label.Annotations.Any(a => a.Name == "KeyValues"))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Label column '{_label}' must be a key with KeyValues (use MapValueToKey).");
        var features = inputSchema.FirstOrDefault(c => c.Name == _features);
        if (features.Name == null || features.Kind != SchemaShape.Column.VectorKind.Vector || features.ItemType != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Feature column '{_features}' must be a known-size vector of Single.");

        var shapes = new MLContext();
        var withPrediction = shapes.Transforms.CopyColumns(_predictedLabel, _label).GetOutputSchema(inputSchema);
        return shapes.Transforms.Conversion.MapKeyToVector(_score, _label).GetOutputSchema(withPrediction);
    }

    public NearestCentroidTransformer Fit(IDataView input)
    {
        // Public code cannot turn a DataViewSchema into a SchemaShape, so Fit validates the schema itself.
        var label = input.Schema.GetColumnOrNull(_label) ?? throw new ArgumentOutOfRangeException(nameof(input), $"Could not find label column '{_label}'");
        var features = input.Schema.GetColumnOrNull(_features) ?? throw new ArgumentOutOfRangeException(nameof(input), $"Could not find feature column '{_features}'");
        if (label.Type is not KeyDataViewType { RawType: var raw } keyType || raw != typeof(uint))
            throw new ArgumentOutOfRangeException(nameof(input), $"Label column '{_label}' must be Key<UInt32>, got {label.Type}.");
        if (features.Type is not VectorDataViewType { IsKnownSize: true } featureType || featureType.ItemType != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(input), $"Feature column '{_features}' must be a known-size vector of Single, got {features.Type}.");

        int classes = (int)keyType.Count, dimension = featureType.Size;
        var sums = new double[classes, dimension];
        var counts = new int[classes];
        using (var cursor = input.GetRowCursor(new[] { label, features }))
        {
            var labelGetter = cursor.GetGetter<uint>(label);
            var featureGetter = cursor.GetGetter<VBuffer<float>>(features);
            uint key = 0;
            VBuffer<float> x = default;
            while (cursor.MoveNext())
            {
                labelGetter(ref key);
                if (key == 0)
                    continue;
                featureGetter(ref x);
                int k = (int)key - 1, d = 0;
                foreach (float value in x.DenseValues())
                    sums[k, d++] += value;
                counts[k]++;
            }
        }
        var centroids = new float[classes][];
        for (int k = 0; k < classes; k++)
            centroids[k] = Enumerable.Range(0, dimension).Select(d => counts[k] == 0 ? 0f : (float)(sums[k, d] / counts[k])).ToArray();
        return new NearestCentroidTransformer(centroids, label, _features, _score, _predictedLabel, _temperature);
    }
}
