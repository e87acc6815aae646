using System.Globalization;

namespace Microsoft.ML.Peft.Cli;

/// <summary>A usage error: unknown option, missing or malformed value.</summary>
internal sealed class CommandLineException(string message) : Exception(message);

/// <summary>Parsed <c>--name value</c> options and <c>--switch</c> flags.</summary>
internal sealed class CommandLine
{
    private readonly Dictionary<string, string> values = new(StringComparer.Ordinal);
    private readonly HashSet<string> switches = new(StringComparer.Ordinal);

    /// <summary>Parses options; <paramref name="flags"/> take a value, <paramref name="switchNames"/> do not.</summary>
    public static CommandLine Parse(ReadOnlySpan<string> args, IReadOnlyCollection<string> flags, IReadOnlyCollection<string> switchNames)
    {
        var result = new CommandLine();
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            string? inline = null;
            int eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                inline = arg[(eq + 1)..];
                arg = arg[..eq];
            }
            if (switchNames.Contains(arg))
            {
                result.switches.Add(arg);
            }
            else if (flags.Contains(arg))
            {
                string value = inline ?? (i + 1 < args.Length ? args[++i] : throw new CommandLineException($"{arg} needs a value"));
                if (!result.values.TryAdd(arg, value)) throw new CommandLineException($"{arg} is given twice");
            }
            else
            {
                throw new CommandLineException($"unknown option '{arg}'");
            }
        }
        return result;
    }

    public bool Has(string name) => switches.Contains(name);

    public string? Text(string name) => values.GetValueOrDefault(name);

    public string Required(string name) => Text(name) ?? throw new CommandLineException($"{name} is required");

    public int Int(string name, int fallback, int min = 1) => Number(name, fallback, s => int.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture), min);

    public double Real(string name, double fallback, double min = 0) => Number(name, fallback, s => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture), min);

    private T Number<T>(string name, T fallback, Func<string, T> parse, T min) where T : IComparable<T>
    {
        if (Text(name) is not { } text) return fallback;
        T value;
        try
        {
            value = parse(text);
        }
        catch (FormatException)
        {
            throw new CommandLineException($"{name}: '{text}' is not a number");
        }
        catch (OverflowException)
        {
            throw new CommandLineException($"{name}: '{text}' is out of range");
        }
        if (value.CompareTo(min) < 0) throw new CommandLineException($"{name} must be at least {min}, got {text}");
        return value;
    }
}
