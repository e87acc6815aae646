namespace Microsoft.ML.Peft.Hub;

/// <summary>
/// Where and how <see cref="PretrainedSource"/> fetches models. Defaults follow huggingface_hub's environment
/// variables: <c>HF_ENDPOINT</c> (default https://huggingface.co), <c>HF_HUB_CACHE</c> or <c>HF_HOME</c>/hub
/// (default ~/.cache/huggingface/hub), <c>HF_HUB_OFFLINE</c>=1 for offline mode and <c>HF_TOKEN</c> for private repos.
/// </summary>
public sealed record PretrainedSourceOptions
{
    /// <summary>Hub base address, without a trailing slash.</summary>
    public string Endpoint { get; init; } = (Env("HF_ENDPOINT") ?? "https://huggingface.co").TrimEnd('/');

    /// <summary>Cache root holding <c>models--{owner}--{name}</c> folders (same layout as huggingface_hub).</summary>
    public string CacheDirectory { get; init; } = DefaultCacheDirectory();

    /// <summary>Never touch the network; use only what is in the cache.</summary>
    public bool Offline { get; init; } = Env("HF_HUB_OFFLINE") is { } v && v.ToUpperInvariant() is "1" or "TRUE" or "YES" or "ON";

    /// <summary>Branch, tag or commit to resolve.</summary>
    public string Revision { get; init; } = "main";

    /// <summary>Bearer token sent to the hub endpoint only (never to redirect targets); null for public repositories.</summary>
    public string? Token { get; init; } = Env("HF_TOKEN");

    /// <summary>Fall back to <c>pytorch_model.bin</c> (read with the restricted pickle reader) when a repository has no safetensors.</summary>
    public bool AllowPyTorchWeights { get; init; } = true;

    /// <summary>Attempts per file; interrupted downloads resume from where they stopped.</summary>
    public int MaxAttempts { get; init; } = 4;

    /// <summary>Timeout of one HTTP request.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(10);

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

    private static string DefaultCacheDirectory()
    {
        if (Env("HF_HUB_CACHE") is { } cache) return cache;
        string home = Env("HF_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface");
        return Path.Combine(home, "hub");
    }
}
