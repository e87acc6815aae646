namespace Microsoft.ML;

/// <summary>
/// The context a component writes itself into when a model is saved. As in ML.NET, every member that could write
/// something is internal, so code outside the stand-in can implement <see cref="ICanSaveModel"/> but cannot save any
/// state; a model containing such a component fails to save with "ModelSignature not specified!".
/// </summary>
public sealed class ModelSaveContext : IDisposable
{
    internal ModelSaveContext()
    {
    }

    /// <summary>The payload written by a stand-in component, or null when nothing was written.</summary>
    internal Internal.PersistedComponent? Written { get; set; }

    /// <summary>Releases the context.</summary>
    public void Dispose()
    {
    }
}
