using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// Runs a workload of the PyTorch peer script (<c>build/reference/bench_torch.py</c>) in the same benchmark run, so our
/// figure and PyTorch's are taken under the same machine conditions. The peer is optional: when <c>/usr/bin/python3</c>
/// with torch is absent, <see cref="TryRun"/> returns null and the caller prints <c>n/a</c>.
/// </summary>
internal static partial class TorchPeer
{
    private const string Python = "/usr/bin/python3";

    /// <summary>The peer's tokens/s for <paramref name="workload"/> (a name bench_torch.py accepts with --only), or null.</summary>
    public static double? TryRun(string workload, int threads = 2)
    {
        string? script = FindScript();
        if (script is null || !File.Exists(Python)) return null;
        var start = new ProcessStartInfo(Python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(script)!,
        };
        foreach (var arg in new[] { script, "--threads", threads.ToString(CultureInfo.InvariantCulture), "--only", workload })
            start.ArgumentList.Add(arg);
        try
        {
            using var process = Process.Start(start)!;
            string output = process.StandardOutput.ReadToEnd();
            string errors = process.StandardError.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                Console.Error.WriteLine($"torch peer '{workload}' failed (exit {process.ExitCode}): {errors.Trim()}");
                return null;
            }
            var match = TokensPerSecond().Match(output);
            return match.Success ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    private static string? FindScript()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "build", "reference", "bench_torch.py");
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    [GeneratedRegex(@"tokens/s=([0-9.]+)")]
    private static partial Regex TokensPerSecond();
}
