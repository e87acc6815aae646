using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.StandIn.Tests.ThirdParty;

/// <summary>
/// The fitted third-party model: implements <see cref="ITransformer"/> directly and builds its output columns with the
/// public <see cref="DataViewSchema.Builder"/> and <see cref="DataViewSchema.Annotations.Builder"/>.
/// </summary>
internal sealed class NearestCentroidTransformer : ITransformer
{
    private readonly float[][] _centroids;
    private readonly DataViewSchema.Column _trainingLabel;
    private readonly string _features;
    private readonly string _score;
    private readonly string _predictedLabel;
    private readonly double _temperature;

    public NearestCentroidTransformer(float[][] centroids, DataViewSchema.Column trainingLabel, string features, string score, string predictedLabel,
        double temperature)
    {
        _temperature = temperature;
        _centroids = centroids;
        _trainingLabel = trainingLabel;
        _features = features;
        _score = score;
        _predictedLabel = predictedLabel;
    }

    public bool IsRowToRowMapper => true;

    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        int classes = _centroids.Length;
        var keyValues = new DataViewSchema.Annotations.Builder();
        keyValues.Add(_trainingLabel.Annotations, kind => kind == "KeyValues");

        var scoreAnnotations = new DataViewSchema.Annotations.Builder();
        if (_trainingLabel.Annotations.Schema.GetColumnOrNull("KeyValues") is { Type: VectorDataViewType { ItemType: TextDataViewType } })
        {
            VBuffer<ReadOnlyMemory<char>> names = default;
            _trainingLabel.Annotations.GetValue("KeyValues", ref names);
            scoreAnnotations.Add("SlotNames", new VectorDataViewType(TextDataViewType.Instance, classes),
                (ref VBuffer<ReadOnlyMemory<char>> dst) => names.CopyTo(ref dst));
        }
        scoreAnnotations.AddPrimitiveValue("ScoreColumnKind", TextDataViewType.Instance, "MulticlassClassification".AsMemory());
        scoreAnnotations.AddPrimitiveValue("ScoreValueKind", TextDataViewType.Instance, "Score".AsMemory());

        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema);
        builder.AddColumn(_score, new VectorDataViewType(NumberDataViewType.Single, classes), scoreAnnotations.ToAnnotations());
        builder.AddColumn(_predictedLabel, new KeyDataViewType(typeof(uint), classes), keyValues.ToAnnotations());
        return builder.ToSchema();
    }

    public IDataView Transform(IDataView input)
    {
        var schema = GetOutputSchema(input.Schema);
        return new AppendedColumnsDataView(input, schema, new[] { FeatureIndex(input.Schema) }, MakeGetter);
    }

    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new Mapper(this, inputSchema);

    /// <summary>Nothing can be written: ModelSaveContext's writers are internal to ML.NET. Model.Save reports
    /// "ModelSignature not specified!"; persist the weights elsewhere (e.g. a side file).</summary>
    public void Save(ModelSaveContext ctx)
    {
    }

    private int FeatureIndex(DataViewSchema schema)
        => (schema.GetColumnOrNull(_features) ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Could not find feature column '{_features}'")).Index;

    /// <summary>Score (index 0) and PredictedLabel (index 1) share one computation per row.</summary>
    private Delegate MakeGetter(DataViewRow input, int appendedIndex)
    {
        var featureGetter = input.GetGetter<VBuffer<float>>(input.Schema[FeatureIndex(input.Schema)]);
        VBuffer<float> x = default;
        var probabilities = new float[_centroids.Length];
        long computedAt = -1;
        void Compute()
        {
            if (computedAt == input.Position)
                return;
            featureGetter(ref x);
            var values = x.DenseValues().ToArray();
            var logits = _centroids.Select(c => -c.Select((v, d) => (double)(values[d] - v) * (values[d] - v)).Sum() / _temperature).ToArray();
            double max = logits.Max(), z = logits.Sum(l => Math.Exp(l - max));
            for (int k = 0; k < logits.Length; k++)
                probabilities[k] = (float)(Math.Exp(logits[k] - max) / z);
            computedAt = input.Position;
        }
        if (appendedIndex == 0)
            return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
            {
                Compute();
                var editor = VBufferEditor.Create(ref dst, probabilities.Length);
                probabilities.CopyTo(editor.Values);
                dst = editor.Commit();
            });
        return (ValueGetter<uint>)((ref uint dst) =>
        {
            Compute();
            int best = 0;
            for (int k = 1; k < probabilities.Length; k++)
            {
                if (probabilities[k] > probabilities[best])
                    best = k;
            }
            dst = (uint)best + 1;
        });
    }

    private sealed class Mapper : IRowToRowMapper
    {
        private readonly NearestCentroidTransformer _parent;

        public Mapper(NearestCentroidTransformer parent, DataViewSchema inputSchema)
        {
            _parent = parent;
            InputSchema = inputSchema;
            OutputSchema = parent.GetOutputSchema(inputSchema);
        }

        public DataViewSchema InputSchema { get; }

        public DataViewSchema OutputSchema { get; }

        public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
        {
            var columns = dependingColumns.Where(c => c.Index < InputSchema.Count).Select(c => InputSchema[c.Index]).ToList();
            if (dependingColumns.Any(c => c.Index >= InputSchema.Count))
                columns.Add(InputSchema[_parent.FeatureIndex(InputSchema)]);
            return columns.Distinct();
        }

        public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        {
            var active = activeColumns.Select(c => c.Index).ToHashSet();
            var appended = Enumerable.Range(InputSchema.Count, OutputSchema.Count - InputSchema.Count).Select(active.Contains).ToArray();
            return new AppendedColumnsRow(input, OutputSchema, appended, _parent.MakeGetter);
        }
    }
}
