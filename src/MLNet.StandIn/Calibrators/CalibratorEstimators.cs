using Microsoft.ML.Data;
using Microsoft.ML.Internal;

namespace Microsoft.ML.Calibrators;

/// <summary>
/// Base of calibrator estimators: reads a Single score, a Boolean label and an optional Single weight, fits the
/// calibrator and returns a transformer that adds the "Probability" column. The constructor is private protected.
/// </summary>
public abstract class CalibratorEstimatorBase<TICalibrator> : IEstimator<CalibratorTransformer<TICalibrator>>
    where TICalibrator : class, ICalibrator
{
    private protected readonly string? LabelColumnName;
    private protected readonly string ScoreColumnName;
    private protected readonly string? WeightColumnName;

    private protected CalibratorEstimatorBase(string? labelColumnName, string scoreColumnName, string? weightColumnName)
    {
        ArgumentException.ThrowIfNullOrEmpty(scoreColumnName);
        LabelColumnName = labelColumnName;
        ScoreColumnName = scoreColumnName;
        WeightColumnName = weightColumnName;
    }

    /// <summary>Fits the calibrator on the rows of <paramref name="input"/> with a finite score.</summary>
    public CalibratorTransformer<TICalibrator> Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        ((IEstimator<CalibratorTransformer<TICalibrator>>)this).GetOutputSchema(SchemaShape.Create(input.Schema));
        return Create(Train(ReadExamples(input)));
    }

    private protected abstract TICalibrator Train(IReadOnlyList<CalibrationExample> examples);

    private protected abstract CalibratorTransformer<TICalibrator> Create(TICalibrator calibrator);

    private List<CalibrationExample> ReadExamples(IDataView input)
    {
        var examples = new List<CalibrationExample>();
        if (LabelColumnName == null)
            return examples;
        var score = input.Schema[ScoreColumnName];
        var label = input.Schema[LabelColumnName];
        var columns = new List<DataViewSchema.Column> { score, label };
        DataViewSchema.Column? weight = WeightColumnName != null ? input.Schema[WeightColumnName] : null;
        if (weight != null)
            columns.Add(weight.Value);
        using var cursor = input.GetRowCursor(columns);
        var scoreGetter = cursor.GetGetter<float>(score);
        var labelGetter = cursor.GetGetter<bool>(label);
        var weightGetter = weight != null ? cursor.GetGetter<float>(weight.Value) : null;
        float s = 0, w = 1;
        bool l = false;
        while (cursor.MoveNext())
        {
            scoreGetter(ref s);
            labelGetter(ref l);
            weightGetter?.Invoke(ref w);
            if (float.IsFinite(s) && float.IsFinite(w) && w >= 0)
                examples.Add(new CalibrationExample(s, l, w));
        }
        return examples;
    }

    SchemaShape IEstimator<CalibratorTransformer<TICalibrator>>.GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var score = SchemaErrors.Find(inputSchema, "score", ScoreColumnName);
        if (score.Kind != SchemaShape.Column.VectorKind.Scalar || score.ItemType != NumberDataViewType.Single || score.IsKey)
            throw SchemaErrors.Mismatch(nameof(inputSchema), "score", ScoreColumnName, "Single", score.GetTypeString());
        if (LabelColumnName != null)
        {
            var label = SchemaErrors.Find(inputSchema, "label", LabelColumnName);
            if (label.Kind != SchemaShape.Column.VectorKind.Scalar || label.ItemType is not BooleanDataViewType)
                throw SchemaErrors.Mismatch(nameof(inputSchema), "label", LabelColumnName, "Boolean", label.GetTypeString());
        }
        if (WeightColumnName != null)
        {
            var weight = SchemaErrors.Find(inputSchema, "weight", WeightColumnName);
            if (weight.Kind != SchemaShape.Column.VectorKind.Scalar || weight.ItemType != NumberDataViewType.Single)
                throw SchemaErrors.Mismatch(nameof(inputSchema), "weight", WeightColumnName, "Single", weight.GetTypeString());
        }
        var result = inputSchema.ToList();
        var annotations = new List<SchemaShape.Column>
        {
            new(AnnotationKinds.IsNormalized, SchemaShape.Column.VectorKind.Scalar, BooleanDataViewType.Instance, false),
        };
        annotations.AddRange(score.Annotations.Where(a => a.Name is AnnotationKinds.ScoreColumnKind or AnnotationKinds.ScoreColumnSetId));
        ShapeEdit.Set(result, new SchemaShape.Column(CalibratorTransformerNames.Probability, SchemaShape.Column.VectorKind.Scalar,
            NumberDataViewType.Single, false, new SchemaShape(annotations)));
        return new SchemaShape(result);
    }
}

/// <summary>Fits a <see cref="PlattCalibrator"/>.</summary>
public sealed class PlattCalibratorEstimator : CalibratorEstimatorBase<PlattCalibrator>
{
    internal PlattCalibratorEstimator(string labelColumnName, string scoreColumnName, string? exampleWeightColumnName)
        : base(labelColumnName ?? throw new ArgumentNullException(nameof(labelColumnName)), scoreColumnName, exampleWeightColumnName)
    {
    }

    private protected override PlattCalibrator Train(IReadOnlyList<CalibrationExample> examples) => CalibratorTraining.FitPlatt(examples);

    private protected override CalibratorTransformer<PlattCalibrator> Create(PlattCalibrator calibrator) => new PlattCalibratorTransformer(calibrator, ScoreColumnName);
}

/// <summary>A <see cref="PlattCalibrator"/> with fixed slope and offset (nothing is learned).</summary>
public sealed class FixedPlattCalibratorEstimator : CalibratorEstimatorBase<PlattCalibrator>
{
    private readonly double _slope;
    private readonly double _offset;

    internal FixedPlattCalibratorEstimator(double slope, double offset, string scoreColumnName)
        : base(null, scoreColumnName, null)
    {
        _slope = slope;
        _offset = offset;
    }

    private protected override PlattCalibrator Train(IReadOnlyList<CalibrationExample> examples) => new(_slope, _offset);

    private protected override CalibratorTransformer<PlattCalibrator> Create(PlattCalibrator calibrator) => new PlattCalibratorTransformer(calibrator, ScoreColumnName);
}

/// <summary>Fits an <see cref="IsotonicCalibrator"/>.</summary>
public sealed class IsotonicCalibratorEstimator : CalibratorEstimatorBase<IsotonicCalibrator>
{
    internal IsotonicCalibratorEstimator(string labelColumnName, string scoreColumnName, string? exampleWeightColumnName)
        : base(labelColumnName ?? throw new ArgumentNullException(nameof(labelColumnName)), scoreColumnName, exampleWeightColumnName)
    {
    }

    private protected override IsotonicCalibrator Train(IReadOnlyList<CalibrationExample> examples) => CalibratorTraining.FitIsotonic(examples);

    private protected override CalibratorTransformer<IsotonicCalibrator> Create(IsotonicCalibrator calibrator) => new IsotonicCalibratorTransformer(calibrator, ScoreColumnName);
}
