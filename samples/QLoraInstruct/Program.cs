// QLoRA instruction tuning: teaches stories260K (a 260K-parameter Llama trained on children's stories) to answer
// "Is this review positive or negative?" about real SST-2 movie reviews with the word "positive" or "negative".
//   dotnet run -c Release --project samples/QLoraInstruct              (quick run: 12,000 reviews, 1 epoch, 200 held out)
//   dotnet run -c Release --project samples/QLoraInstruct -- --full    (all 52,528 reviews of <= 80 characters, 2 epochs,
//                                                                      all 291 such dev reviews held out)
// Options: --model <folder> --data <sst2 folder> --rows N --epochs N --eval-rows N --rank N --learning-rate X
//          --fp32 (plain LoRA, no 4-bit base) --seed N --output <folder>
// Environment: PEFT_MODEL, PEFT_DATA override the default shared folders.
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Peft;
using Microsoft.ML.Peft.Generation;
using Microsoft.ML.Peft.InstructionTuning;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Tokenizers;

var settings = InstructSettings.Parse(args);
if (settings is null) return 2;
const string Question = "Is this review positive or negative?";
// A short template: Alpaca's preamble alone is ~150 tokens in stories260K's 512-piece vocabulary.
var template = new PromptTemplate("Review: {input}\n{instruction}\nAnswer:");
var quantization = settings.Fp32 ? null : new QuantizationOptions();   // NF4, block 64, double quantization

// Real text: SST-2 train sentences (up to 80 characters) to learn from; the dev split is held out.
var train = Load(Path.Combine(settings.Data, "train.tsv")).Take(settings.Rows).ToList();
var heldOut = Load(Path.Combine(settings.Data, "dev.tsv")).Take(settings.EvalRows).ToList();
Console.WriteLine($"base model: {settings.Model} ({(quantization is null ? "float32 + LoRA" : "NF4 + double quantization + LoRA (QLoRA)")})");
Console.WriteLine($"data:       {train.Count:N0} SST-2 training reviews as instructions, {heldOut.Count} held-out dev reviews, {settings.Epochs} epoch(s)");

var ml = new MLContext(seed: settings.Seed);
var options = new CausalLmFineTuningEstimator.Options
{
    BaseModel = settings.Model,
    Template = template,
    Quantization = quantization,
    LoraRank = settings.Rank,
    LoraAlpha = 2 * settings.Rank,
    LoraDropout = 0.05,
    TargetModules = ["all-linear"],
    MaxEpochs = settings.Epochs,
    BatchSize = 16,
    LearningRate = settings.LearningRate,
    WarmupRatio = 0.03,
    MaxGradientNorm = 1.0,
    MaxSequenceLength = 128,
    MaxNewTokens = 8,
    // stories260K never saw its EOS (id 2) in pre-training: llama2.c separates stories with BOS (id 1), so BOS is the
    // token the model already knows as "the text ends here"; EOS's embedding row is an untrained copy of ids 0 and 3.
    EndOfSequenceTokenId = 1,
    Seed = settings.Seed,
    Log = line => Console.WriteLine($"  {line}"),
};

// Before: the base model (4-bit as well, so only the adapter differs) continues the same prompts.
var tokenizer = TokenizerLoader.FromFolder(settings.Model);
var baseModel = PretrainedModel.LoadForCausalLM(settings.Model, new ModelLoadOptions { ConvertToFloat32 = true });
if (quantization is not null) QuantizedModel.QuantizeLinearLayers(baseModel, quantization);
var encoder = new InstructionEncoder(tokenizer, template, options.MaxSequenceLength, options.EndOfSequenceTokenId.Value);
var generation = new GenerationOptions { MaxNewTokens = options.MaxNewTokens, EosTokenIds = [options.EndOfSequenceTokenId.Value] };
var watch = Stopwatch.StartNew();
var before = heldOut.Select(r => baseModel.Generate(encoder.EncodePrompt(Question, r.Input), generation, ids => tokenizer.Decode(ids, skipSpecialTokens: true)).Text ?? "").ToList();
double baseLoss = CausalLmLoss.Evaluate(baseModel, heldOut.Select(r => encoder.Encode(r, out _)!).ToList(), 16, baseModel.Config.EosTokenId ?? 0).MeanNll;
Console.WriteLine($"before: held-out loss per answer token {F(baseLoss)} (perplexity {F(Math.Exp(baseLoss))}), answer accuracy {F(Accuracy(before))} ({watch.Elapsed.TotalSeconds:F1} s)");

watch.Restart();
var pipeline = ml.Transforms.CausalLmFineTuning(options);
var model = pipeline.Fit(InstructionJsonl.ToDataView(ml, train));
double trainSeconds = watch.Elapsed.TotalSeconds;
Console.WriteLine($"trained in {trainSeconds:F1} s");

watch.Restart();
var heldOutView = InstructionJsonl.ToDataView(ml, heldOut);
var after = ml.Data.CreateEnumerable<GeneratedRow>(model.Transform(heldOutView), reuseRowObject: false).Select(r => r.Generated).ToList();
var metrics = model.Evaluate(heldOutView);
Console.WriteLine($"after:  held-out loss per answer token {F(metrics.Loss)} (perplexity {F(metrics.Perplexity)}), answer accuracy {F(Accuracy(after))} ({watch.Elapsed.TotalSeconds:F1} s to generate {heldOut.Count} answers)");

Console.WriteLine();
Console.WriteLine("held-out generations (before → after, expected):");
for (int i = 0; i < Math.Min(6, heldOut.Count); i++)
{
    Console.WriteLine($"  {heldOut[i].Input}");
    Console.WriteLine($"      {Show(before[i])} → {Show(after[i])}   expected: {heldOut[i].Output}");
}
Console.WriteLine();
Console.WriteLine(FormattableString.Invariant(
    $"RESULT {{\"quantization\":\"{(quantization is null ? "fp32" : "nf4-dq")}\",\"rows\":{train.Count},\"epochs\":{settings.Epochs},\"rank\":{settings.Rank},\"eval_rows\":{heldOut.Count},\"accuracy_before\":{Accuracy(before):F4},\"accuracy_after\":{Accuracy(after):F4},\"loss_before\":{baseLoss:F4},\"loss_after\":{metrics.Loss:F4},\"train_seconds\":{trainSeconds:F1}}}"));

if (settings.Output is { } output)
{
    model.Save(output);
    Console.WriteLine($"saved to {output} (reload with CausalLmFineTuningTransformer.Load)");
}
return 0;

// The generation must start with the expected word (what follows its letters, if the model has not learned to stop, is ignored).
double Accuracy(List<string> generated)
{
    int correct = 0;
    for (int i = 0; i < heldOut.Count; i++)
    {
        if (string.Equals(Answer(generated[i]), heldOut[i].Output, StringComparison.OrdinalIgnoreCase)) correct++;
    }
    return correct / (double)heldOut.Count;
}

static string Answer(string generated) => new([.. generated.TrimStart().TakeWhile(char.IsLetter)]);

static string Show(string text) => "\"" + text.Trim().Replace("\n", "\\n", StringComparison.Ordinal) + "\"";

static string F(double value) => value.ToString("F3", CultureInfo.InvariantCulture);

static IEnumerable<InstructionExample> Load(string path)
{
    foreach (string line in File.ReadLines(path).Skip(1))
    {
        var fields = line.Split('\t');
        if (fields.Length < 2) throw new InvalidDataException($"{path}: expected 'sentence<TAB>label', got \"{line}\"");
        string sentence = fields[0].Trim();
        if (sentence.Length == 0 || sentence.Length > 80) continue;
        yield return new InstructionExample(Question, sentence, fields[1].Trim() == "1" ? "positive" : "negative");
    }
}

internal sealed class GeneratedRow
{
    public string Generated { get; set; } = "";
}

internal sealed record InstructSettings(string Model, string Data, int Rows, int Epochs, int EvalRows, int Rank, double LearningRate, bool Fp32, int Seed, string? Output)
{
    public static InstructSettings? Parse(string[] args)
    {
        string shared = FindShared();
        string model = Environment.GetEnvironmentVariable("PEFT_MODEL") ?? Path.Combine(shared, "models", "stories260K");
        string data = Environment.GetEnvironmentVariable("PEFT_DATA") ?? Path.Combine(shared, "data", "sst2");
        bool full = args.Contains("--full");
        var s = new InstructSettings(model, data, full ? int.MaxValue : 12000, full ? 2 : 1, full ? int.MaxValue : 200, 16, 5e-3, false, 1, null);
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int() => int.Parse(Next(), CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--full": break;
                case "--fp32": s = s with { Fp32 = true }; break;
                case "--model": s = s with { Model = Next() }; break;
                case "--data": s = s with { Data = Next() }; break;
                case "--rows": s = s with { Rows = Int() }; break;
                case "--epochs": s = s with { Epochs = Int() }; break;
                case "--eval-rows": s = s with { EvalRows = Int() }; break;
                case "--rank": s = s with { Rank = Int() }; break;
                case "--seed": s = s with { Seed = Int() }; break;
                case "--learning-rate": s = s with { LearningRate = double.Parse(Next(), CultureInfo.InvariantCulture) }; break;
                case "--output": s = s with { Output = Next() }; break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]}; see the header of samples/QLoraInstruct/Program.cs");
                    return null;
            }
        }
        if (!Directory.Exists(s.Model)) { Console.Error.WriteLine($"model folder not found: {s.Model} (set --model or PEFT_MODEL)"); return null; }
        if (!File.Exists(Path.Combine(s.Data, "train.tsv"))) { Console.Error.WriteLine($"SST-2 not found in {s.Data} (set --data or PEFT_DATA)"); return null; }
        return s;
    }

    /// <summary>The shared models/data folder: ../shared next to the repository holding this sample.</summary>
    private static string FindShared()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Peft.MLNet.sln"))) return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared"));
            }
        }
        return Path.GetFullPath("shared");
    }
}
