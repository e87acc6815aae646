using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Peft.Generation;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// <c>quant-ppl [--shared DIR] [--stories N] [--sst2 N]</c>: perplexity of stories260K with its 35 linear layers in
/// float32, NF4, FP4, Int4 (block 64, double quantization) and row-wise int8, on two held-out text sets: N stories
/// sampled from the float32 model (BOS prompt, temperature 1, top-k 50, 256 new tokens, seeds 1..N: TinyStories-like
/// text the quantized models did not generate) and the first N sentences of the SST-2 dev set (out of domain).
/// Prints a Markdown table (QLoRA paper, Table 2 analogue).
/// </summary>
internal sealed class QuantPerplexityBenchmark : IBenchmark
{
    public string Name => "quant-ppl";

    public string Description => "stories260K perplexity with fp32 / NF4 / FP4 / Int4 / int8 base weights: [--stories N] [--sst2 N]";

    public int Run(string[] args)
    {
        string? shared = null;
        int storyCount = 32, sst2Count = 872;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--shared": shared = args[i + 1]; break;
                case "--stories": storyCount = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--sst2": sst2Count = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                default: Console.Error.WriteLine($"quant-ppl: unknown option {args[i]}"); return 2;
            }
        }
        shared ??= SharedFolder.Find("pass --shared DIR");
        string modelDir = Path.Combine(shared, "models", "stories260K");
        var clock = Stopwatch.StartNew();
        var tokenizer = TokenizerLoader.FromFolder(modelDir);

        var reference = PretrainedModel.LoadForCausalLM(modelDir);
        var stories = new List<IReadOnlyList<int>>();
        for (int seed = 1; seed <= storyCount; seed++)
        {
            var result = reference.Generate([1], new GenerationOptions { MaxNewTokens = 256, DoSample = true, TopK = 50, Seed = (ulong)seed, EosTokenIds = [2] });
            stories.Add([1, .. result.TokenIds.Where(t => t != 2)]);
        }
        var sst2 = File.ReadLines(Path.Combine(shared, "data", "sst2", "dev.tsv")).Skip(1).Take(sst2Count)
            .Select(line => (IReadOnlyList<int>)[1, .. tokenizer.EncodeToIds(line.Split('\t')[0].Trim())])
            .ToList();
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Format(inv, "stories260K, {0} generated stories ({1} tokens), {2} SST-2 dev sentences ({3} tokens)",
            stories.Count, stories.Sum(s => s.Count - 1), sst2.Count, sst2.Sum(s => s.Count - 1)));
        Console.WriteLine();
        Console.WriteLine("| base weights | bits/weight | generated stories ppl | SST-2 dev ppl |");
        Console.WriteLine("| --- | ---: | ---: | ---: |");
        foreach (var format in Enum.GetValues<BaseWeightFormat>())
        {
            var model = PretrainedModel.LoadForCausalLM(modelDir);
            QuantizationQuality.ApplyBaseWeightFormat(model, format);
            double bits = format switch
            {
                BaseWeightFormat.Float32 => 32,
                BaseWeightFormat.Int8 => 8 + 32.0 / 64, // one fp32 scale per row of 64 (hidden size)
                _ => Quantization.QuantizedTensor4Bit.NominalBitsPerParameter(64, doubleQuant: true),
            };
            Console.WriteLine(string.Format(inv, "| {0} | {1:0.###} | {2:F4} | {3:F4} |", format, bits,
                QuantizationQuality.Perplexity(model, stories), QuantizationQuality.Perplexity(model, sst2)));
        }
        Console.WriteLine();
        Console.WriteLine(string.Format(inv, "total {0:F1} s", clock.Elapsed.TotalSeconds));
        return 0;
    }
}
