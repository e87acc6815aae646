// peft: command-line PEFT fine-tuning for ML.NET (dotnet tool).
//   peft classification --dataset train.tsv --validation-dataset dev.tsv --text-col sentence --label-col label
//                       --model <folder|hub id> --method lora --epochs 2 --output ./model
return Microsoft.ML.Peft.Cli.PeftCli.Run(args, Console.Out, Console.Error);
