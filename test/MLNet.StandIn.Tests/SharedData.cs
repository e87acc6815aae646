namespace MLNet.StandIn.Tests;

/// <summary>Locates <c>../shared</c> beside the repository (or <c>$PEFT_SHARED</c>).</summary>
internal static class SharedData
{
    public static string Root { get; } =
        Environment.GetEnvironmentVariable("PEFT_SHARED") is { Length: > 0 } env
            ? Path.GetFullPath(env)
            : Path.GetFullPath(Path.Combine(FindRepoRoot(), "..", "shared"));

    public static string Data => Path.Combine(Root, "data");

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Peft.MLNet.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"Peft.MLNet.sln not found above {AppContext.BaseDirectory}");
    }
}
