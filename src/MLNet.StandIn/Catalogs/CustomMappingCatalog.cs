using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace Microsoft.ML;

/// <summary>CustomMapping: user code per row, the only transformer extension that survives Model.Save/Load.</summary>
public static class CustomMappingCatalog
{
    /// <summary>
    /// Maps each row through <paramref name="mapAction"/> (input columns → <typeparamref name="TSrc"/> members,
    /// <typeparamref name="TDst"/> members → new columns). With a <paramref name="contractName"/> the model can be saved:
    /// only the contract name is stored, and loading looks up the <see cref="CustomMappingFactory{TSrc, TDst}"/> registered for it.
    /// </summary>
    public static CustomMappingEstimator<TSrc, TDst> CustomMapping<TSrc, TDst>(this TransformsCatalog catalog, Action<TSrc, TDst> mapAction, string? contractName,
        SchemaDefinition? inputSchemaDefinition = null, SchemaDefinition? outputSchemaDefinition = null)
        where TSrc : class, new()
        where TDst : class, new()
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new CustomMappingEstimator<TSrc, TDst>(new CustomMappingTransformer<TSrc, TDst>(mapAction, contractName, inputSchemaDefinition, outputSchemaDefinition));
    }
}
