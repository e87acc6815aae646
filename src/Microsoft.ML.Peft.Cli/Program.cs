// peft: command-line LoRA fine-tuning for ML.NET (dotnet tool).
//   peft classification --dataset train.tsv --validation-dataset dev.tsv --text-col sentence --label-col label
//                       --model <folder|hub id> --method lora --epochs 2 --output ./model
using Microsoft.ML.Peft.Cli;

try
{
    if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
    {
        Console.WriteLine(ClassificationCommand.Usage);
        return args.Length == 0 ? 2 : 0;
    }
    if (args[0] != "classification")
    {
        Console.Error.WriteLine($"peft: unknown command '{args[0]}'. Commands: classification.");
        Console.Error.WriteLine(ClassificationCommand.Usage);
        return 2;
    }
    var arguments = CommandLine.Parse(args.AsSpan(1), ClassificationCommand.Flags, ClassificationCommand.Switches);
    return ClassificationCommand.Run(ClassificationSettings.From(arguments), Console.Out);
}
catch (CommandLineException e)
{
    Console.Error.WriteLine($"peft: {e.Message}");
    Console.Error.WriteLine("Run 'peft --help' for usage.");
    return 2;
}
