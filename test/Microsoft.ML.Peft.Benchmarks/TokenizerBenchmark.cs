using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// Tokenizer throughput on SST-2 train (67,349 sentences): WordPiece with bert-base-uncased (vocab.txt and
/// tokenizer.json loaders) and SentencePiece BPE with stories260K (tokenizer.model and tokenizer.json loaders).
/// Prints <c>tokenizer &lt;name&gt; sentences/s=.. MB/s=.. tokens=..</c>, best of three passes after two warm-up passes.
/// </summary>
internal sealed class TokenizerBenchmark : IBenchmark
{
    public string Name => "tokenizer";

    public string Description => "tokenizer throughput on SST-2 train: WordPiece (BERT) and SentencePiece BPE (stories260K)";

    public int Run(string[] args)
    {
        string shared = args.Length > 0 ? args[0] : SharedFolder.Find("pass the shared folder as the first argument");
        string trainPath = Path.Combine(shared, "data", "sst2", "train.tsv");
        var sentences = File.ReadAllLines(trainPath).Skip(1).Select(l => l.Split('\t')[0]).ToArray();
        double megabytes = sentences.Sum(s => Encoding.UTF8.GetByteCount(s)) / 1e6;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# {sentences.Length} sentences, {megabytes:F2} MB UTF-8 from {trainPath}"));

        string bert = Path.Combine(shared, "models", "bert-base-uncased-tokenizer");
        string stories = Path.Combine(shared, "models", "stories260K");
        Measure("wordpiece-bert-vocab.txt", WordPieceTokenizer.Create(Path.Combine(bert, "vocab.txt")), sentences, megabytes);
        Measure("wordpiece-bert-tokenizer.json", TokenizerLoader.FromTokenizerJson(Path.Combine(bert, "tokenizer.json")), sentences, megabytes);
        Measure("sentencepiece-stories260K-tokenizer.model", SentencePieceBpeTokenizer.Create(Path.Combine(stories, "tokenizer.model")), sentences, megabytes);
        Measure("sentencepiece-stories260K-tokenizer.json", TokenizerLoader.FromTokenizerJson(Path.Combine(stories, "tokenizer.json")), sentences, megabytes);
        Measure("batch128-wordpiece-bert-max128", TokenizerLoader.FromFolder(bert), sentences, megabytes, batch: 128);
        return 0;
    }

    /// <summary>
    /// Best of three timed passes after two warm-up passes. Besides wall-clock rates it prints the rate per second of this
    /// process's CPU time (the work is single-threaded), which stays meaningful on a machine shared with other jobs.
    /// </summary>
    private static void Measure(string name, Tokenizer tokenizer, string[] sentences, double megabytes, int batch = 0)
    {
        long tokens = 0;
        double best = double.MaxValue, bestCpu = double.MaxValue;
        var process = Process.GetCurrentProcess();
        for (int pass = 0; pass < 5; pass++)
        {
            process.Refresh();
            var cpu = process.TotalProcessorTime;
            var watch = Stopwatch.StartNew();
            tokens = batch > 0 ? EncodeBatches(tokenizer, sentences, batch) : EncodeAll(tokenizer, sentences);
            watch.Stop();
            process.Refresh();
            if (pass < 2) continue;
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
            bestCpu = Math.Min(bestCpu, (process.TotalProcessorTime - cpu).TotalSeconds);
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"tokenizer {name} sentences/s={sentences.Length / best:F0} MB/s={megabytes / best:F2} tokens={tokens} cpu-sentences/s={sentences.Length / bestCpu:F0} cpu-MB/s={megabytes / bestCpu:F2}"));
    }

    private static long EncodeAll(Tokenizer tokenizer, string[] sentences)
    {
        long tokens = 0;
        foreach (var s in sentences) tokens += tokenizer.CountTokens(s);
        return tokens;
    }

    private static long EncodeBatches(Tokenizer tokenizer, string[] sentences, int batch)
    {
        long tokens = 0;
        var options = new EncodeOptions { MaxLength = 128, Padding = PaddingStrategy.Longest };
        for (int i = 0; i < sentences.Length; i += batch)
        {
            var result = tokenizer.EncodeBatch(sentences.AsSpan(i, Math.Min(batch, sentences.Length - i)).ToArray(), null, options);
            tokens += result.Lengths.Sum();
        }
        return tokens;
    }
}
