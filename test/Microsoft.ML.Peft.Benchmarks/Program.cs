using System.Reflection;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>One benchmark command of this program: <c>dotnet run -c Release --project test/Microsoft.ML.Peft.Benchmarks -- NAME [args]</c>.</summary>
internal interface IBenchmark
{
    /// <summary>The command word, e.g. "gemm".</summary>
    string Name { get; }

    /// <summary>One line shown in the usage text.</summary>
    string Description { get; }

    /// <summary>Runs the benchmark, printing its result lines to standard output; returns the exit code.</summary>
    int Run(string[] args);
}

internal static class Program
{
    private static int Main(string[] args)
    {
        // Every IBenchmark in this assembly is a command; each lives in its own file.
        var benchmarks = typeof(Program).Assembly.GetTypes()
            .Where(t => typeof(IBenchmark).IsAssignableFrom(t) && t is { IsClass: true, IsAbstract: false })
            .Select(t => (IBenchmark)Activator.CreateInstance(t)!)
            .OrderBy(b => b.Name, StringComparer.Ordinal)
            .ToList();

        var chosen = args.Length == 0 ? null : benchmarks.FirstOrDefault(b => b.Name == args[0]);
        if (chosen is null)
        {
            Console.Error.WriteLine("usage: dotnet run -c Release --project test/Microsoft.ML.Peft.Benchmarks -- <command> [args]");
            foreach (var b in benchmarks) Console.Error.WriteLine($"  {b.Name,-12} {b.Description}");
            return args.Length == 0 ? 1 : 2;
        }
        return chosen.Run(args[1..]);
    }
}
