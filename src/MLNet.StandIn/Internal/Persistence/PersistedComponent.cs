namespace Microsoft.ML.Internal;

/// <summary>
/// A saved stand-in component: the name of its loader, its binary payload and its saved children (a chain's
/// transformers). This is the stand-in's private model format; real ML.NET does not read it.
/// </summary>
internal sealed class PersistedComponent
{
    public PersistedComponent(string loaderName, byte[] payload, IReadOnlyList<PersistedComponent>? children = null)
    {
        LoaderName = loaderName;
        Payload = payload;
        Children = children ?? Array.Empty<PersistedComponent>();
    }

    public string LoaderName { get; }

    public byte[] Payload { get; }

    public IReadOnlyList<PersistedComponent> Children { get; }

    /// <summary>Builds a component whose payload is written by <paramref name="write"/>.</summary>
    public static PersistedComponent Create(string loaderName, Action<BinaryWriter> write, IReadOnlyList<PersistedComponent>? children = null)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
            write(writer);
        return new PersistedComponent(loaderName, stream.ToArray(), children);
    }

    /// <summary>A reader over the payload.</summary>
    public BinaryReader OpenPayload() => new(new MemoryStream(Payload, writable: false), System.Text.Encoding.UTF8);
}

/// <summary>Saves a component through its public <see cref="ICanSaveModel"/> interface, as ML.NET does.</summary>
internal static class ComponentSaver
{
    /// <summary>
    /// Asks <paramref name="component"/> to save itself. Components outside the stand-in cannot write anything into a
    /// <see cref="ModelSaveContext"/> (its members are internal), which fails with ML.NET's message.
    /// </summary>
    public static PersistedComponent Save(ICanSaveModel component)
    {
        using var ctx = new ModelSaveContext();
        component.Save(ctx);
        return ctx.Written ?? throw new InvalidOperationException("ModelSignature not specified!");
    }
}
