using System.Collections;
using Microsoft.ML.Internal;

namespace Microsoft.ML.Data;

/// <summary>
/// A sequence of transformers applied one after another, each with the <see cref="TransformerScope"/> in which it applies.
/// It is a row-to-row mapper when every transformer is.
/// </summary>
public sealed class TransformerChain<TLastTransformer> : ITransformer, IEnumerable<ITransformer>, IDisposable
    where TLastTransformer : class, ITransformer
{
    internal const string LoaderName = "TransformerChain";

    private readonly ITransformer[] _transformers;
    private readonly TransformerScope[] _scopes;

    /// <summary>The last transformer (null for an empty chain).</summary>
    public readonly TLastTransformer LastTransformer;

    /// <summary>A chain of <paramref name="transformers"/> with one scope each.</summary>
    public TransformerChain(IEnumerable<ITransformer> transformers, IEnumerable<TransformerScope> scopes)
    {
        ArgumentNullException.ThrowIfNull(transformers);
        ArgumentNullException.ThrowIfNull(scopes);
        _transformers = transformers.ToArray();
        _scopes = scopes.ToArray();
        if (_transformers.Length != _scopes.Length)
            throw new ArgumentException($"A transformer chain needs one scope per transformer: {_transformers.Length} transformers, {_scopes.Length} scopes.", nameof(scopes));
        LastTransformer = GetLast();
    }

    /// <summary>A chain of <paramref name="transformers"/>, all in scope <see cref="TransformerScope.Everything"/>.</summary>
    public TransformerChain(params ITransformer[] transformers)
        : this(transformers ?? throw new ArgumentNullException(nameof(transformers)), transformers.Select(_ => TransformerScope.Everything))
    {
    }

    private TLastTransformer GetLast()
    {
        if (_transformers.Length == 0)
            return null!;
        if (_transformers[^1] is not TLastTransformer last)
            throw new ArgumentException($"The last transformer of the chain is {_transformers[^1].GetType().Name}, not {typeof(TLastTransformer).Name}.");
        return last;
    }

    /// <summary>The output schema when every transformer applies.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => GetOutputSchema(inputSchema, TransformerScope.Everything);

    /// <summary>The output schema when the transformers whose scope intersects <paramref name="scope"/> apply.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema, TransformerScope scope)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var schema = inputSchema;
        for (int i = 0; i < _transformers.Length; i++)
        {
            if ((_scopes[i] & scope) != 0)
                schema = _transformers[i].GetOutputSchema(schema);
        }
        return schema;
    }

    /// <summary>Applies every transformer, lazily.</summary>
    public IDataView Transform(IDataView input) => Transform(input, TransformerScope.Everything);

    /// <summary>Applies the transformers whose scope intersects <paramref name="scope"/>, lazily.</summary>
    public IDataView Transform(IDataView input, TransformerScope scope)
    {
        ArgumentNullException.ThrowIfNull(input);
        var data = input;
        for (int i = 0; i < _transformers.Length; i++)
        {
            if ((_scopes[i] & scope) != 0)
                data = _transformers[i].Transform(data);
        }
        return data;
    }

    /// <summary>The sub-chain of transformers whose scope intersects <paramref name="scopeFilter"/>.</summary>
    public TransformerChain<ITransformer> GetModelFor(TransformerScope scopeFilter)
    {
        var kept = Enumerable.Range(0, _transformers.Length).Where(i => (_scopes[i] & scopeFilter) != 0).ToArray();
        return new TransformerChain<ITransformer>(kept.Select(i => _transformers[i]), kept.Select(i => _scopes[i]));
    }

    /// <summary>A new chain with <paramref name="transformer"/> appended.</summary>
    public TransformerChain<TNewLast> Append<TNewLast>(TNewLast transformer, TransformerScope scope = TransformerScope.Everything)
        where TNewLast : class, ITransformer
    {
        ArgumentNullException.ThrowIfNull(transformer);
        return new TransformerChain<TNewLast>(_transformers.Append(transformer), _scopes.Append(scope));
    }

    /// <summary>Enumerates the transformers.</summary>
    public IEnumerator<ITransformer> GetEnumerator() => ((IEnumerable<ITransformer>)_transformers).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Disposes the transformers that are disposable.</summary>
    public void Dispose()
    {
        foreach (var transformer in _transformers)
            (transformer as IDisposable)?.Dispose();
    }

    bool ITransformer.IsRowToRowMapper => _transformers.All(t => t.IsRowToRowMapper);

    IRowToRowMapper ITransformer.GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var mappers = new IRowToRowMapper[_transformers.Length];
        var schema = inputSchema;
        for (int i = 0; i < _transformers.Length; i++)
        {
            mappers[i] = _transformers[i].GetRowToRowMapper(schema);
            schema = mappers[i].OutputSchema;
        }
        return new CompositeRowToRowMapper(inputSchema, mappers);
    }

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.Written = Persist();
    }

    private PersistedComponent Persist()
    {
        var children = _transformers.Select(ComponentSaver.Save).ToArray();
        return PersistedComponent.Create(LoaderName, w =>
        {
            w.Write(_scopes.Length);
            foreach (var scope in _scopes)
                w.Write((int)scope);
        }, children);
    }
}

/// <summary>Loads saved chains (always as <see cref="TransformerChain{ITransformer}"/>, as ML.NET does).</summary>
internal static class TransformerChainLoader
{
    public static ITransformer Load(PersistedComponent component, Func<PersistedComponent, ITransformer> loadChild)
    {
        using var reader = component.OpenPayload();
        int count = reader.ReadInt32();
        if (count != component.Children.Count)
            throw new InvalidDataException($"Saved transformer chain declares {count} transformers but has {component.Children.Count}.");
        var scopes = new TransformerScope[count];
        for (int i = 0; i < count; i++)
        {
            scopes[i] = (TransformerScope)reader.ReadInt32();
            if ((scopes[i] & ~TransformerScope.Everything) != 0)
                throw new InvalidDataException($"Invalid transformer scope {(int)scopes[i]} in saved chain.");
        }
        return new TransformerChain<ITransformer>(component.Children.Select(loadChild), scopes);
    }
}
