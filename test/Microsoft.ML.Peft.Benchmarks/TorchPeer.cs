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
    public static double? TryRun(string workload, int threads = 2) =>
        RunPeer(workload, threads) is { } output && TokensPerSecond().Match(output) is { Success: true } match
            ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture)
            : null;

    /// <summary>
    /// The "torch <paramref name="workload"/> ..." line printed by bench_torch.py, or null when the peer is absent or
    /// failed: for workloads that report more than tokens/s (bert-base-12l-lora-train's CPU time).
    /// </summary>
    public static string? TryRunLine(string workload, int threads = 2) =>
        RunPeer(workload, threads)?.Split('\n').FirstOrDefault(l => l.StartsWith($"torch {workload} ", StringComparison.Ordinal));

    /// <summary>The peer's standard output for one workload, or null when the peer is absent or failed (its errors printed).</summary>
    private static string? RunPeer(string workload, int threads)
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
            // Both pipes drained at once: a peer that fills one while we block on the other would hang.
            var errors = process.StandardError.ReadToEndAsync();
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                Console.Error.WriteLine($"torch peer '{workload}' failed (exit {process.ExitCode}): {errors.Result.Trim()}");
                return null;
            }
            return output;
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
