using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Peft.IO;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// <c>-- load [folder]</c>: writes a BERT-base-shaped checkpoint (109,482,240 random fp32 weights under the real
/// bert-base-uncased tensor names and shapes, 438 MB) once, then measures opening it: header validation plus a touch
/// of every tensor through the memory mapping, and the process's resident memory before and after (VmRSS, split into
/// anonymous and file-backed pages from /proc/self/status). Zero-copy loading shows up as file-backed pages only.
/// </summary>
internal sealed class LoadBenchmark : IBenchmark
{
    private const int Hidden = 768, Intermediate = 3072, Layers = 12, Vocab = 30522, Positions = 512;

    public string Name => "load";

    public string Description => "open + validate + touch a 110M-parameter BERT-base safetensors checkpoint via mmap; RSS before/after";

    public int Run(string[] args)
    {
        string folder = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), "peft-load-benchmark");
        string path = Path.Combine(folder, "model.safetensors");
        if (!File.Exists(path))
        {
            var clock = Stopwatch.StartNew();
            WriteCheckpoint(path);
            Console.WriteLine($"wrote {path} ({new FileInfo(path).Length / 1e6:F1} MB) in {clock.ElapsedMilliseconds} ms");
        }
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();

        // Warm-up run (JIT), then the measured runs; RSS is measured around the first measured open.
        OpenAndTouch(path, out _);
        var before = Rss.Read();
        var times = new List<double>();
        long parameters = 0;
        Rss afterTouch = before, afterFullRead = before;
        double fullReadMs = 0;
        for (int run = 0; run < 5; run++)
        {
            var clock = Stopwatch.StartNew();
            using var file = OpenAndTouch(path, out parameters);
            times.Add(clock.Elapsed.TotalMilliseconds);
            if (run == 0)
            {
                afterTouch = Rss.Read();
                var read = Stopwatch.StartNew();
                double checksum = 0;
                foreach (var t in file.Tensors) checksum += System.Numerics.Tensors.TensorPrimitives.Sum(t.AsFloat32());
                fullReadMs = read.Elapsed.TotalMilliseconds;
                afterFullRead = Rss.Read();
                GC.KeepAlive(checksum);
            }
        }
        times.Sort();
        double median = times[times.Count / 2];
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Format(inv, "load bert-base-110M safetensors open_ms={0:F2} rss_delta_mb={1:F1}", median, (afterTouch.Total - before.Total) / 1024.0));
        Console.WriteLine(string.Format(inv,
            "  parameters={0} file_mb={1:F1} open_ms(min/median/max)={2:F2}/{3:F2}/{4:F2} | after touching every tensor: anon_delta_mb={5:F1} file_delta_mb={6:F1} | " +
            "after reading every weight ({7:F0} ms): rss_delta_mb={8:F1} anon_delta_mb={9:F1} file_delta_mb={10:F1}",
            parameters, new FileInfo(path).Length / 1048576.0, times[0], median, times[^1],
            (afterTouch.Anon - before.Anon) / 1024.0, (afterTouch.File - before.File) / 1024.0, fullReadMs,
            (afterFullRead.Total - before.Total) / 1024.0, (afterFullRead.Anon - before.Anon) / 1024.0, (afterFullRead.File - before.File) / 1024.0));
        return 0;
    }

    /// <summary>Opens (validating the header) and touches the first and last element of every tensor through the mapping.</summary>
    private static SafeTensorsFile OpenAndTouch(string path, out long parameters)
    {
        var file = SafeTensorsFile.Open(path);
        float sink = 0;
        parameters = 0;
        foreach (var t in file.Tensors)
        {
            var values = t.AsFloat32();
            sink += values[0] + values[^1];
            parameters += values.Length;
        }
        GC.KeepAlive(sink);
        return file;
    }

    /// <summary>The tensors of bert-base-uncased's BertModel, in HF naming.</summary>
    private static IEnumerable<(string Name, int[] Shape)> BertBaseTensors()
    {
        yield return ("bert.embeddings.word_embeddings.weight", [Vocab, Hidden]);
        yield return ("bert.embeddings.position_embeddings.weight", [Positions, Hidden]);
        yield return ("bert.embeddings.token_type_embeddings.weight", [2, Hidden]);
        yield return ("bert.embeddings.LayerNorm.weight", [Hidden]);
        yield return ("bert.embeddings.LayerNorm.bias", [Hidden]);
        for (int l = 0; l < Layers; l++)
        {
            string p = $"bert.encoder.layer.{l}.";
            foreach (string proj in new[] { "query", "key", "value" })
            {
                yield return (p + $"attention.self.{proj}.weight", [Hidden, Hidden]);
                yield return (p + $"attention.self.{proj}.bias", [Hidden]);
            }
            yield return (p + "attention.output.dense.weight", [Hidden, Hidden]);
            yield return (p + "attention.output.dense.bias", [Hidden]);
            yield return (p + "attention.output.LayerNorm.weight", [Hidden]);
            yield return (p + "attention.output.LayerNorm.bias", [Hidden]);
            yield return (p + "intermediate.dense.weight", [Intermediate, Hidden]);
            yield return (p + "intermediate.dense.bias", [Intermediate]);
            yield return (p + "output.dense.weight", [Hidden, Intermediate]);
            yield return (p + "output.dense.bias", [Hidden]);
            yield return (p + "output.LayerNorm.weight", [Hidden]);
            yield return (p + "output.LayerNorm.bias", [Hidden]);
        }
        yield return ("bert.pooler.dense.weight", [Hidden, Hidden]);
        yield return ("bert.pooler.dense.bias", [Hidden]);
    }

    private static void WriteCheckpoint(string path)
    {
        var rng = new Random(42);
        var writer = new SafeTensorsWriter();
        foreach (var (name, shape) in BertBaseTensors())
        {
            var data = GC.AllocateUninitializedArray<float>(shape.Aggregate(1, (a, b) => a * b));
            for (int i = 0; i < data.Length; i++) data[i] = (rng.NextSingle() - 0.5f) * 0.04f;
            writer.Add(name, data, shape);
        }
        writer.Save(path);
    }

    /// <summary>Resident set size in KiB from /proc/self/status (0 where that file does not exist).</summary>
    private readonly record struct Rss(long Total, long Anon, long File)
    {
        public static Rss Read()
        {
            const string status = "/proc/self/status";
            if (!System.IO.File.Exists(status)) return default;
            long total = 0, anon = 0, file = 0;
            foreach (string line in System.IO.File.ReadLines(status))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) total = Kib(line);
                else if (line.StartsWith("RssAnon:", StringComparison.Ordinal)) anon = Kib(line);
                else if (line.StartsWith("RssFile:", StringComparison.Ordinal)) file = Kib(line);
            }
            return new Rss(total, anon, file);
        }

        private static long Kib(string line) =>
            long.Parse(line.Split(':', 2)[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }
}
