using Microsoft.ML.Data;
using Microsoft.ML.Internal;

namespace Microsoft.ML;

/// <summary>Saving and loading models, and creating prediction engines.</summary>
public sealed class ModelOperationsCatalog
{
    internal MLContext Context { get; }

    internal ModelOperationsCatalog(MLContext context)
    {
        Context = context;
    }

    /// <summary>
    /// Saves <paramref name="model"/> (may be null) and <paramref name="inputSchema"/> (may be null) to a zip stream in the
    /// stand-in's private format. Every component saves itself through <see cref="ICanSaveModel"/>; one that cannot (any
    /// transformer outside ML.NET) fails with "ModelSignature not specified!", as in ML.NET.
    /// </summary>
    public void Save(ITransformer? model, DataViewSchema? inputSchema, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite)
            throw new ArgumentException("The stream must be writable.", nameof(stream));
        var saved = model == null ? null : ComponentSaver.Save(model);
        ModelArchive.Write(stream, saved, inputSchema);
    }

    /// <summary>Saves to a file (created or overwritten).</summary>
    public void Save(ITransformer? model, DataViewSchema? inputSchema, string filePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(filePath);
        var saved = model == null ? null : ComponentSaver.Save(model);
        using var stream = File.Create(filePath);
        ModelArchive.Write(stream, saved, inputSchema);
    }

    /// <summary>Loads a model saved by <see cref="Save(ITransformer, DataViewSchema, Stream)"/>; only load trusted models.</summary>
    public ITransformer Load(Stream stream, out DataViewSchema? inputSchema)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return Load(stream, "stream", Context.ComponentCatalog, out inputSchema);
    }

    /// <summary>Loads a model file.</summary>
    public ITransformer Load(string filePath, out DataViewSchema? inputSchema)
    {
        ArgumentException.ThrowIfNullOrEmpty(filePath);
        if (!File.Exists(filePath))
            throw new FileNotFoundException($"Model file '{filePath}' not found.", filePath);
        using var stream = File.OpenRead(filePath);
        return Load(stream, $"'{filePath}'", Context.ComponentCatalog, out inputSchema);
    }

    private static ITransformer Load(Stream stream, string source, Runtime.ComponentCatalog catalog, out DataViewSchema? inputSchema)
    {
        var (model, schema) = ModelArchive.Read(stream, source);
        inputSchema = schema;
        return model == null
            ? new TransformerChain<ITransformer>()
            : ComponentLoaders.Load(model, source, catalog);
    }

    /// <summary>A prediction engine from <typeparamref name="TSrc"/> objects to <typeparamref name="TDst"/> objects.</summary>
    public PredictionEngine<TSrc, TDst> CreatePredictionEngine<TSrc, TDst>(ITransformer transformer, bool ignoreMissingColumns = true,
        SchemaDefinition? inputSchemaDefinition = null, SchemaDefinition? outputSchemaDefinition = null)
        where TSrc : class
        where TDst : class, new()
        => CreatePredictionEngine<TSrc, TDst>(transformer, new PredictionEngineOptions
        {
            IgnoreMissingColumns = ignoreMissingColumns,
            InputSchemaDefinition = inputSchemaDefinition,
            OutputSchemaDefinition = outputSchemaDefinition,
        });

    /// <summary>A prediction engine whose input column types are taken from <paramref name="inputSchema"/>.</summary>
    public PredictionEngine<TSrc, TDst> CreatePredictionEngine<TSrc, TDst>(ITransformer transformer, DataViewSchema inputSchema)
        where TSrc : class
        where TDst : class, new()
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var definition = SchemaDefinition.Create(typeof(TSrc), SchemaDefinition.Direction.Read);
        foreach (var column in definition)
        {
            if (inputSchema.GetColumnOrNull(column.ColumnName) is { } given)
                column.ColumnType = given.Type;
        }
        return CreatePredictionEngine<TSrc, TDst>(transformer, new PredictionEngineOptions { InputSchemaDefinition = definition });
    }

    /// <summary>A prediction engine configured by <paramref name="options"/>.</summary>
    public PredictionEngine<TSrc, TDst> CreatePredictionEngine<TSrc, TDst>(ITransformer transformer, PredictionEngineOptions options)
        where TSrc : class
        where TDst : class, new()
    {
        ArgumentNullException.ThrowIfNull(transformer);
        ArgumentNullException.ThrowIfNull(options);
        return new PredictionEngine<TSrc, TDst>(transformer, options);
    }
}
