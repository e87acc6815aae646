namespace Microsoft.ML.Runtime;

/// <summary>
/// The environment components are created in. <see cref="MLContext"/> implements it explicitly, so
/// <c>((IHostEnvironment)mlContext).Register("name")</c> works. The stand-in declares only the members listed here
/// (ML.NET's channel and progress members are omitted): call it, do not implement it.
/// </summary>
public interface IHostEnvironment
{
    /// <summary>Creates a child host with its own random generator.</summary>
    IHost Register(string name, int? seed = null, bool? verbose = null);

    /// <summary>The catalog of loadable components and extensions.</summary>
    ComponentCatalog ComponentCatalog { get; }
}

/// <summary>A named child environment with a random generator.</summary>
public interface IHost : IHostEnvironment
{
    /// <summary>The host's random generator (seeded from its parent when that is seeded).</summary>
    Random Rand { get; }
}

/// <summary>The kind of a log message.</summary>
public enum ChannelMessageKind
{
    /// <summary>Detailed tracing.</summary>
    Trace,

    /// <summary>Information.</summary>
    Info,

    /// <summary>A warning.</summary>
    Warning,

    /// <summary>An error.</summary>
    Error,
}
