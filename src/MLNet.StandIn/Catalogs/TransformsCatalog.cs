namespace Microsoft.ML;

/// <summary>Data transformations; conversions live in <see cref="Conversion"/>, column operations are extension methods.</summary>
public sealed class TransformsCatalog
{
    internal MLContext Context { get; }

    internal TransformsCatalog(MLContext context)
    {
        Context = context;
        Conversion = new ConversionTransforms(this);
    }

    /// <summary>Type conversions: value ↔ key, key → indicator vector.</summary>
    public ConversionTransforms Conversion { get; }

    /// <summary>The catalog of conversion transforms (the target of <see cref="ConversionsExtensionsCatalog"/>).</summary>
    public sealed class ConversionTransforms
    {
        internal TransformsCatalog Owner { get; }

        internal ConversionTransforms(TransformsCatalog owner)
        {
            Owner = owner;
        }
    }
}
