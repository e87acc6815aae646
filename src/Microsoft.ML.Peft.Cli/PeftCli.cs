using System.Runtime.CompilerServices;
using Microsoft.ML.Peft.Tuners;

[assembly: InternalsVisibleTo("Microsoft.ML.Peft.Tests")]

namespace Microsoft.ML.Peft.Cli;

/// <summary>
/// The <c>peft</c> command: dispatches to a command and turns the errors a user can cause into one clear line and an
/// exit code (2: bad command line, 1: the data, model or method was rejected), instead of a stack trace.
/// </summary>
internal static class PeftCli
{
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        try
        {
            if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
            {
                output.WriteLine(ClassificationCommand.Usage);
                return args.Length == 0 ? 2 : 0;
            }
            if (args[0] != "classification")
            {
                error.WriteLine($"peft: unknown command '{args[0]}'. Commands: classification.");
                error.WriteLine(ClassificationCommand.Usage);
                return 2;
            }
            var arguments = CommandLine.Parse(args.AsSpan(1), ClassificationCommand.Flags, ClassificationCommand.Switches);
            return ClassificationCommand.Run(ClassificationSettings.From(arguments), output);
        }
        catch (CommandLineException e)
        {
            error.WriteLine($"peft: {e.Message}");
            error.WriteLine("Run 'peft --help' for usage.");
            return 2;
        }
        catch (Exception e) when (e is ArgumentException or IOException or PeftConfigException)
        {
            // Schema problems, a missing or malformed model or data file (IOException covers the model loader's exceptions), a method that does not fit the model: the message names
            // the column, file or module at fault.
            error.WriteLine($"peft: error: {e.Message}");
            return 1;
        }
    }
}
