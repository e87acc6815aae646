using Microsoft.ML.Data;
using Microsoft.ML.SearchSpace;
using Microsoft.ML.SearchSpace.Option;

namespace Microsoft.ML.AutoML;

/// <summary>
/// A pipeline of sweepable estimators, with alternatives. Estimators get keys "e0", "e1", ... in the order they are
/// added; the pipeline's possible shapes ("schemas") are products like "e0 * e1 * e3", chosen through the "_SCHEMA_"
/// option. The search space holds every estimator's search space under its key, plus "_SCHEMA_".
/// </summary>
public class SweepablePipeline : ISweepable<EstimatorChain<ITransformer>>
{
    private const string SchemaOption = "_SCHEMA_";
    private readonly List<string[]> _schemas;
    private string _currentSchema;

    internal SweepablePipeline()
        : this(new Dictionary<string, SweepableEstimator>(), new List<string[]> { Array.Empty<string>() })
    {
    }

    private SweepablePipeline(Dictionary<string, SweepableEstimator> estimators, List<string[]> schemas)
    {
        Estimators = estimators;
        _schemas = schemas;
        _currentSchema = SchemaString(schemas[0]);
    }

    /// <summary>Every estimator's search space under its key, and the "_SCHEMA_" choice of pipeline shapes.</summary>
    public SearchSpace.SearchSpace SearchSpace
    {
        get
        {
            var searchSpace = new SearchSpace.SearchSpace();
            foreach (var (key, estimator) in Estimators)
                searchSpace.Add(key, estimator.SearchSpace);
            searchSpace.Add(SchemaOption, new ChoiceOption(_schemas.Select(SchemaString).Cast<object>().ToArray()));
            return searchSpace;
        }
    }

    /// <summary>The estimators' current parameters and the current schema.</summary>
    public Parameter CurrentParameter
    {
        get
        {
            var parameter = Parameter.CreateNestedParameter();
            foreach (var (key, estimator) in Estimators)
                parameter[key] = estimator.Parameter;
            parameter[SchemaOption] = Parameter.FromString(_currentSchema);
            return parameter;
        }
    }

    /// <summary>The estimators by key.</summary>
    public Dictionary<string, SweepableEstimator> Estimators { get; }

    /// <summary>Builds the chain of the schema in <paramref name="parameter"/>["_SCHEMA_"], each estimator from its member of <paramref name="parameter"/>.</summary>
    public EstimatorChain<ITransformer> BuildFromOption(MLContext context, Parameter parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        _currentSchema = parameter[SchemaOption].AsType<string>();
        var chain = new EstimatorChain<ITransformer>();
        foreach (var key in ParseSchema(_currentSchema))
        {
            if (!Estimators.TryGetValue(key, out var estimator))
                throw new ArgumentException($"Schema '{_currentSchema}' names unknown estimator '{key}'.", nameof(parameter));
            chain = chain.Append(estimator.BuildFromOption(context, parameter.TryGetValue(key, out var p) ? p : Parameter.CreateNestedParameter()));
        }
        return chain;
    }

    /// <summary>The pipeline restricted to one schema.</summary>
    public SweepablePipeline BuildSweepableEstimatorPipeline(string schema)
    {
        var keys = ParseSchema(schema);
        if (!_schemas.Any(s => s.SequenceEqual(keys)))
            throw new ArgumentException($"'{schema}' is not a schema of this pipeline.", nameof(schema));
        var estimators = keys.ToDictionary(k => k, k => Estimators[k]);
        return new SweepablePipeline(estimators, new List<string[]> { keys });
    }

    /// <summary>A new pipeline followed by one of <paramref name="sweepables"/> (alternatives; a pipeline contributes all its schemas).</summary>
    public SweepablePipeline Append(params ISweepable<IEstimator<ITransformer>>[] sweepables)
    {
        ArgumentNullException.ThrowIfNull(sweepables);
        var estimators = new Dictionary<string, SweepableEstimator>(Estimators);
        var alternatives = new List<string[]>();
        foreach (var sweepable in sweepables)
        {
            switch (sweepable)
            {
                case SweepableEstimator estimator:
                    alternatives.Add(new[] { AddEstimator(estimators, estimator) });
                    break;
                default:
                    throw new ArgumentException($"Cannot append a {sweepable?.GetType().Name ?? "null"}; append SweepableEstimators or use AppendPipeline.", nameof(sweepables));
            }
        }
        return new SweepablePipeline(estimators, Product(_schemas, alternatives));
    }

    /// <summary>A new pipeline followed by every schema of <paramref name="pipeline"/> (its estimators get new keys).</summary>
    internal SweepablePipeline AppendPipeline(SweepablePipeline pipeline)
    {
        var estimators = new Dictionary<string, SweepableEstimator>(Estimators);
        var renamed = pipeline.Estimators.ToDictionary(kv => kv.Key, kv => AddEstimator(estimators, kv.Value));
        var alternatives = pipeline._schemas.Select(s => s.Select(k => renamed[k]).ToArray()).ToList();
        return new SweepablePipeline(estimators, Product(_schemas, alternatives));
    }

    /// <summary>"e0=>e1=>e2": the estimators of the schema selected by <paramref name="parameter"/>.</summary>
    public string ToString(Parameter parameter)
        => string.Join("=>", ParseSchema((parameter ?? throw new ArgumentNullException(nameof(parameter)))[SchemaOption].AsType<string>()));

    private static string AddEstimator(Dictionary<string, SweepableEstimator> estimators, SweepableEstimator estimator)
    {
        string key = "e" + estimators.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
        estimators.Add(key, estimator);
        return key;
    }

    private static List<string[]> Product(List<string[]> prefixes, List<string[]> suffixes)
        => prefixes.SelectMany(p => suffixes.Select(s => p.Concat(s).ToArray())).ToList();

    private static string SchemaString(string[] keys) => string.Join(" * ", keys);

    private static string[] ParseSchema(string schema)
        => schema.Split('*', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

/// <summary>Append overloads that build <see cref="SweepablePipeline"/>s (plain estimators get an empty search space).</summary>
public static class SweepableExtension
{
    /// <summary><paramref name="estimator"/> then <paramref name="estimator1"/>.</summary>
    public static SweepablePipeline Append(this IEstimator<ITransformer> estimator, SweepableEstimator estimator1)
        => new SweepablePipeline().Append(SweepableEstimator.Wrap(estimator)).Append(estimator1);

    /// <summary><paramref name="pipeline"/> then <paramref name="estimator"/>.</summary>
    public static SweepablePipeline Append(this SweepablePipeline pipeline, IEstimator<ITransformer> estimator)
        => (pipeline ?? throw new ArgumentNullException(nameof(pipeline))).Append(SweepableEstimator.Wrap(estimator));

    /// <summary><paramref name="estimator"/> then <paramref name="estimator1"/>.</summary>
    public static SweepablePipeline Append(this SweepableEstimator estimator, SweepablePipeline estimator1)
        => new SweepablePipeline().Append(estimator).AppendPipeline(estimator1 ?? throw new ArgumentNullException(nameof(estimator1)));

    /// <summary><paramref name="estimator"/> then <paramref name="estimator1"/>.</summary>
    public static SweepablePipeline Append(this SweepableEstimator estimator, IEstimator<ITransformer> estimator1)
        => new SweepablePipeline().Append(estimator).Append(SweepableEstimator.Wrap(estimator1));

    /// <summary><paramref name="estimator"/> then <paramref name="pipeline"/>.</summary>
    public static SweepablePipeline Append(this IEstimator<ITransformer> estimator, SweepablePipeline pipeline)
        => new SweepablePipeline().Append(SweepableEstimator.Wrap(estimator)).AppendPipeline(pipeline ?? throw new ArgumentNullException(nameof(pipeline)));

    /// <summary><paramref name="estimator"/> then one of <paramref name="estimators"/>.</summary>
    public static SweepablePipeline Append(this SweepableEstimator estimator, params SweepableEstimator[] estimators)
        => new SweepablePipeline().Append(estimator).Append(estimators);

    /// <summary><paramref name="estimator"/> then one of <paramref name="estimators"/>.</summary>
    public static SweepablePipeline Append(this IEstimator<ITransformer> estimator, params SweepableEstimator[] estimators)
        => new SweepablePipeline().Append(SweepableEstimator.Wrap(estimator)).Append(estimators);
}
