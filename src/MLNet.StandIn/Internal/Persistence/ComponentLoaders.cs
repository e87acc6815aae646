using Microsoft.ML.Calibrators;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace Microsoft.ML.Internal;

/// <summary>The transformers the stand-in can load back, by loader name. Nothing outside the stand-in can register here.</summary>
internal static class ComponentLoaders
{
    public static ITransformer Load(PersistedComponent component, string source, Runtime.ComponentCatalog catalog)
    {
        try
        {
            return component.LoaderName switch
            {
                TransformerChain<ITransformer>.LoaderName => TransformerChainLoader.Load(component, child => Load(child, source, catalog)),
                ValueToKeyMappingTransformer.LoaderName => ValueToKeyMappingTransformer.Load(component),
                KeyToValueMappingTransformer.LoaderName => KeyToValueMappingTransformer.Load(component),
                KeyToVectorMappingTransformer.LoaderName => KeyToVectorMappingTransformer.Load(component),
                ColumnCopyingTransformer.LoaderName => ColumnCopyingTransformer.Load(component),
                ColumnConcatenatingTransformer.LoaderName => ColumnConcatenatingTransformer.Load(component),
                PlattCalibratorTransformer.LoaderName => PlattCalibratorTransformer.Load(component),
                IsotonicCalibratorTransformer.LoaderName => IsotonicCalibratorTransformer.Load(component),
                CustomMappingLoader.LoaderName => CustomMappingLoader.Load(component, catalog),
                _ => throw new FormatException(
                    $"Couldn't load model {source}: no loader is registered for loader signature '{component.LoaderName}'."),
            };
        }
        catch (EndOfStreamException ex)
        {
            throw new InvalidDataException($"Model {source}: the payload of '{component.LoaderName}' is truncated.", ex);
        }
    }
}
