using System.Collections.Immutable;
using Microsoft.ML.Data;
using Microsoft.ML.Internal;

namespace Microsoft.ML.Calibrators;

internal static class CalibratorTransformerNames
{
    public const string Probability = "Probability";
}

/// <summary>Adds the "Probability" column computed from the score by a fitted calibrator. The constructor is private protected.</summary>
public abstract class CalibratorTransformer<TICalibrator> : RowToRowTransformerBase, ISingleFeaturePredictionTransformer<TICalibrator>
    where TICalibrator : class, ICalibrator
{
    private readonly string _scoreColumnName;

    private protected CalibratorTransformer(TICalibrator calibrator, string scoreColumnName)
    {
        Model = calibrator ?? throw new ArgumentNullException(nameof(calibrator));
        _scoreColumnName = scoreColumnName;
    }

    /// <summary>The fitted calibrator.</summary>
    public TICalibrator Model { get; }

    /// <summary>The score column the calibrator reads.</summary>
    public string FeatureColumnName => _scoreColumnName;

    /// <summary>The score column type (Single).</summary>
    public DataViewType FeatureColumnType => NumberDataViewType.Single;

    private protected override ColumnBinding Bind(DataViewSchema inputSchema) => new Binding(this, inputSchema);

    private sealed class Binding : ColumnBinding
    {
        private readonly CalibratorTransformer<TICalibrator> _parent;
        private readonly int _scoreIndex;

        public Binding(CalibratorTransformer<TICalibrator> parent, DataViewSchema inputSchema)
            : base(inputSchema)
        {
            _parent = parent;
            var score = SchemaErrors.Find(inputSchema, "score", parent._scoreColumnName);
            if (score.Type != NumberDataViewType.Single)
                throw SchemaErrors.Mismatch(nameof(inputSchema), "score", parent._scoreColumnName, "Single", score.Type.ToString()!);
            _scoreIndex = score.Index;
            var annotations = new DataViewSchema.Annotations.Builder();
            annotations.Add(score.Annotations, kind => kind is AnnotationKinds.ScoreColumnKind or AnnotationKinds.ScoreColumnSetId);
            annotations.AddPrimitiveValue(AnnotationKinds.ScoreValueKind, TextDataViewType.Instance, "Probability".AsMemory());
            annotations.AddPrimitiveValue(AnnotationKinds.IsNormalized, BooleanDataViewType.Instance, true);
            AddedColumns = new[] { new DataViewSchema.DetachedColumn(CalibratorTransformerNames.Probability, NumberDataViewType.Single, annotations.ToAnnotations()) };
        }

        public override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns { get; }

        public override IEnumerable<int> GetDependencies(int addedIndex) => new[] { _scoreIndex };

        public override Delegate MakeGetter(DataViewRow input, int addedIndex)
        {
            var getter = input.GetGetter<float>(input.Schema[_scoreIndex]);
            var calibrator = _parent.Model;
            float score = 0;
            return (ValueGetter<float>)((ref float dst) =>
            {
                getter(ref score);
                dst = calibrator.PredictProbability(score);
            });
        }
    }
}

/// <summary>The transformer of a fitted Platt calibrator.</summary>
public sealed class PlattCalibratorTransformer : CalibratorTransformer<PlattCalibrator>
{
    internal const string LoaderName = "PlattCalibratorTransformer";

    internal PlattCalibratorTransformer(PlattCalibrator calibrator, string scoreColumnName)
        : base(calibrator, scoreColumnName)
    {
    }

    private protected override PersistedComponent Persist() => PersistedComponent.Create(LoaderName, w =>
    {
        w.Write(FeatureColumnName);
        w.Write(Model.Slope);
        w.Write(Model.Offset);
    });

    internal static PlattCalibratorTransformer Load(PersistedComponent component)
    {
        using var r = component.OpenPayload();
        string score = r.ReadString();
        double slope = r.ReadDouble(), offset = r.ReadDouble();
        if (!double.IsFinite(slope) || !double.IsFinite(offset))
            throw new InvalidDataException("Saved Platt calibrator has non-finite parameters.");
        return new PlattCalibratorTransformer(new PlattCalibrator(slope, offset), score);
    }
}

/// <summary>The transformer of a fitted isotonic calibrator.</summary>
public sealed class IsotonicCalibratorTransformer : CalibratorTransformer<IsotonicCalibrator>
{
    internal const string LoaderName = "IsotonicCalibratorTransformer";

    internal IsotonicCalibratorTransformer(IsotonicCalibrator calibrator, string scoreColumnName)
        : base(calibrator, scoreColumnName)
    {
    }

    private protected override PersistedComponent Persist() => PersistedComponent.Create(LoaderName, w =>
    {
        w.Write(FeatureColumnName);
        w.Write(Model.Mins.Length);
        for (int i = 0; i < Model.Mins.Length; i++)
        {
            w.Write(Model.Mins[i]);
            w.Write(Model.Maxes[i]);
            w.Write(Model.Values[i]);
        }
    });

    internal static IsotonicCalibratorTransformer Load(PersistedComponent component)
    {
        using var r = component.OpenPayload();
        string score = r.ReadString();
        int count = r.ReadInt32();
        if (count < 0 || count > 100_000_000)
            throw new InvalidDataException($"Invalid piece count {count} in saved isotonic calibrator.");
        var mins = new float[count];
        var maxes = new float[count];
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            mins[i] = r.ReadSingle();
            maxes[i] = r.ReadSingle();
            values[i] = r.ReadSingle();
            if (!(mins[i] <= maxes[i]) || (i > 0 && !(mins[i] > maxes[i - 1] && values[i] >= values[i - 1])) || !(values[i] >= 0 && values[i] <= 1))
                throw new InvalidDataException($"Saved isotonic calibrator piece {i} is not monotone.");
        }
        return new IsotonicCalibratorTransformer(new IsotonicCalibrator(mins.ToImmutableArray(), maxes.ToImmutableArray(), values.ToImmutableArray()), score);
    }
}
