namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>Where the benchmarks find the team's shared models and data sets: the <c>shared</c> folder beside the repository.</summary>
internal static class SharedFolder
{
    /// <summary>
    /// PEFT_SHARED when set; otherwise ../shared next to the first folder holding Peft.MLNet.sln above the working
    /// directory or this program; null when there is none.
    /// </summary>
    public static string? TryFind()
    {
        if (Environment.GetEnvironmentVariable("PEFT_SHARED") is { Length: > 0 } env) return env;
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Peft.MLNet.sln"))) return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared"));
            }
        }
        return null;
    }

    /// <summary>As <see cref="TryFind"/>, but a missing folder is an error whose message ends with <paramref name="hint"/>.</summary>
    public static string Find(string hint = "set PEFT_SHARED") =>
        TryFind() ?? throw new DirectoryNotFoundException($"the shared models/data folder was not found (no Peft.MLNet.sln above the working directory or the program); {hint}");
}
