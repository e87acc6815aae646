namespace Microsoft.ML.Peft.Cli;

/// <summary>The options of <c>peft classification</c>, validated.</summary>
internal sealed record ClassificationSettings
{
    public required string Dataset { get; init; }

    public string? ValidationDataset { get; init; }

    public required string TextColumn { get; init; }

    public string? TextColumn2 { get; init; }

    public required string LabelColumn { get; init; }

    public required string Model { get; init; }

    /// <summary>One of <see cref="Methods"/>.</summary>
    public string Method { get; init; } = "lora";

    public int Epochs { get; init; }

    public int BatchSize { get; init; }

    public double LearningRate { get; init; }

    public int MaxLength { get; init; }

    public int Rank { get; init; }

    public double Alpha { get; init; }

    public double Dropout { get; init; }

    public IReadOnlyList<string>? TargetModules { get; init; }

    public int Seed { get; init; }

    public int? TrainRows { get; init; }

    public string? Checkpoints { get; init; }

    public required string Output { get; init; }

    /// <summary>The --method values: LoRA, (IA)³ and the selective methods.</summary>
    public static readonly string[] Methods = ["lora", "ia3", "bitfit", "full", "head-only", "layernorm"];

    public static ClassificationSettings From(CommandLine c)
    {
        string method = c.Text("--method") ?? "lora";
        if (!Methods.Contains(method)) throw new CommandLineException($"--method '{method}' is not supported (supported: {string.Join(", ", Methods)})");
        if (method != "lora")
        {
            foreach (var loraOnly in new[] { "--rank", "--alpha", "--dropout" }.Where(f => c.Text(f) is not null))
                throw new CommandLineException($"{loraOnly} applies to --method lora only, not {method}");
        }
        if (c.Text("--target-modules") is not null && method is not ("lora" or "ia3"))
            throw new CommandLineException($"--target-modules applies to --method lora or ia3 only, not {method}");
        var settings = new ClassificationSettings
        {
            Dataset = c.Required("--dataset"),
            ValidationDataset = c.Text("--validation-dataset"),
            TextColumn = c.Required("--text-col"),
            TextColumn2 = c.Text("--text-col2"),
            LabelColumn = c.Required("--label-col"),
            Model = c.Required("--model"),
            Method = method,
            Epochs = c.Int("--epochs", 2),
            BatchSize = c.Int("--batch-size", 32),
            LearningRate = c.Real("--learning-rate", 2e-4, double.Epsilon),
            MaxLength = c.Int("--max-length", 128),
            Rank = c.Int("--rank", 8),
            Alpha = c.Real("--alpha", 16, double.Epsilon),
            Dropout = c.Real("--dropout", 0.05),
            TargetModules = c.Text("--target-modules")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            Seed = c.Int("--seed", 0, 0),
            TrainRows = c.Text("--train-rows") is null ? null : c.Int("--train-rows", 0),
            Checkpoints = c.Text("--checkpoints"),
            Output = c.Text("--output") ?? "model",
        };
        if (settings.Dropout >= 1) throw new CommandLineException($"--dropout must be below 1, got {settings.Dropout}");
        foreach (var file in new[] { settings.Dataset, settings.ValidationDataset })
        {
            if (file is not null && !File.Exists(file)) throw new CommandLineException($"dataset not found: {file}");
        }
        return settings;
    }
}
