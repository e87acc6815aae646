namespace Microsoft.ML.Peft.Tests;

/// <summary>Locates the repository and the shared models/data folder (<c>../shared</c> beside the checkout).</summary>
internal static class TestPaths
{
    /// <summary>The repository root: the first ancestor of the test binaries that holds Peft.MLNet.sln.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary><c>$PEFT_SHARED</c> if set, otherwise <c>../shared</c> next to the repository.</summary>
    public static string SharedRoot { get; } =
        Environment.GetEnvironmentVariable("PEFT_SHARED") is { Length: > 0 } env
            ? Path.GetFullPath(env)
            : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    public static string Models => Path.Combine(SharedRoot, "models");

    public static string Data => Path.Combine(SharedRoot, "data");

    public static string Stories260K => Path.Combine(Models, "stories260K");

    public static string BertTokenizer => Path.Combine(Models, "bert-base-uncased-tokenizer");

    /// <summary>A committed fixture under test/Microsoft.ML.Peft.Tests/Fixtures (copied next to the test binaries).</summary>
    public static string Fixture(params string[] parts) =>
        Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Peft.MLNet.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException($"Peft.MLNet.sln not found above {AppContext.BaseDirectory}");
    }
}
