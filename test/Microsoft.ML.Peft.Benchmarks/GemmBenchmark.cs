using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Peft.Kernels;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// <c>gemm [MxKxN ...] [--transB] [--b f32|bf16|f16] [--seconds S] [--threads T] [--cpu-time]</c>: GFLOP/s of <see cref="Gemm.Sgemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int)"/>
/// against OpenBLAS's cblas_sgemm in the same process, both on all cores, printing one line per shape:
/// <c>gemm MxKxN ours=G openblas=G ratio=R</c>. With <c>--b bf16</c> or <c>--b f16</c> our side stores B in that
/// precision (widened while packing) and OpenBLAS still runs its fp32 sgemm: the cost of keeping weights in 16 bits.
/// <c>--cpu-time</c> (with <c>--threads 1</c>) times the calling thread's CPU time instead of wall time, for tuning on
/// a machine shared with other processes.
/// </summary>
/// <remarks>
/// Both sides run on the same operands, alternating repetition by repetition so that load from other processes hits
/// both alike; each reports its best repetition (the least disturbed one). Details go to standard error.
/// </remarks>
internal sealed unsafe class GemmBenchmark : IBenchmark
{
    private static readonly (int M, int K, int N)[] DefaultShapes =
        [(1024, 768, 768), (1024, 768, 3072), (1024, 3072, 768), (4096, 4096, 4096)];

    public string Name => "gemm";

    public string Description => "SGEMM GFLOP/s, ours vs OpenBLAS cblas_sgemm: [MxKxN ...] [--transB] [--b f32|bf16|f16] [--seconds S] [--threads T] [--cpu-time]";

    public int Run(string[] args)
    {
        var shapes = new List<(int M, int K, int N)>();
        bool transB = false;
        double seconds = 2.0;
        int threads = Environment.ProcessorCount;
        string precisionB = "f32";
        bool cpuTime = false;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--transB") transB = true;
            else if (args[i] == "--cpu-time") cpuTime = true;
            else if (args[i] == "--seconds" && i + 1 < args.Length) seconds = double.Parse(args[++i], CultureInfo.InvariantCulture);
            else if (args[i] == "--b" && i + 1 < args.Length && args[i + 1] is "f32" or "bf16" or "f16") precisionB = args[++i];
            else if (args[i] == "--threads" && i + 1 < args.Length) threads = int.Parse(args[++i], CultureInfo.InvariantCulture);
            else if (TryParseShape(args[i], out var shape)) shapes.Add(shape);
            else
            {
                Console.Error.WriteLine($"gemm: unrecognised argument '{args[i]}'");
                return 2;
            }
        }
        if (shapes.Count == 0) shapes.AddRange(DefaultShapes);
        if (cpuTime && (threads != 1 || !ThreadCpuClock.IsAvailable))
        {
            Console.Error.WriteLine("gemm: --cpu-time needs --threads 1 on Linux (other threads' CPU time is not counted).");
            return 2;
        }
        s_clock = cpuTime ? ThreadCpuClock.Now : WallSeconds;

        OpenBlas? openBlas = OpenBlas.TryLoad();
        openBlas?.SetThreads(threads);
        Console.Error.WriteLine($"# cores={threads} kernel={GemmIsaInfo.Best} " +
            (openBlas is null ? "openblas=absent" : $"openblas={openBlas.Path} core={openBlas.CoreName} threads={threads}") +
            $" transB={transB} b={precisionB} clock={(cpuTime ? "thread-cpu" : "wall")}");

        foreach ((int m, int k, int n) in shapes)
            Console.WriteLine(Measure(m, k, n, transB, precisionB, seconds, threads, openBlas));
        return 0;
    }

    private static bool TryParseShape(string text, out (int M, int K, int N) shape)
    {
        string[] parts = text.Split('x');
        shape = default;
        if (parts.Length != 3) return false;
        bool ok = int.TryParse(parts[0], out int m) & int.TryParse(parts[1], out int k) & int.TryParse(parts[2], out int n);
        shape = (m, k, n);
        return ok && m > 0 && k > 0 && n > 0;
    }

    private static string Measure(int m, int k, int n, bool transB, string precisionB, double seconds, int threads, OpenBlas? openBlas)
    {
        var random = new Random(42);
        float[] a = RandomArray(random, m * k), b = RandomArray(random, k * n), c = new float[m * n];
        int ldb = transB ? k : n;
        double flops = 2.0 * m * n * k;

        Action ours = precisionB switch
        {
            "bf16" => BFloat16Product(m, n, k, transB, a, b, c, threads),
            "f16" => HalfProduct(m, n, k, transB, a, b, c, threads),
            _ => () => Gemm.Sgemm(GemmIsaInfo.Best, threads, false, transB, m, n, k, 1f, a, k, b, ldb, 0f, c, n),
        };
        Action? theirs = null;
        if (openBlas is not null)
        {
            theirs = () =>
            {
                fixed (float* pa = a, pb = b, pc = c)
                    openBlas.Sgemm(false, transB, m, n, k, 1f, pa, k, pb, ldb, 0f, pc, n);
            };
        }

        // Warm up for a fifth of the budget (at least 3 calls) so that small shapes run tier-1 JIT code, as they do in
        // a long training run. A repetition is a batch of calls lasting about a millisecond or more, so that tiny
        // shapes are not measured at the clock's resolution.
        var warmUp = Stopwatch.StartNew();
        int calls = 0;
        for (; calls < 3 || warmUp.Elapsed.TotalSeconds < seconds / 5; calls++)
        {
            ours();
            theirs?.Invoke();
        }
        int batch = (int)Math.Clamp(1e-3 / (warmUp.Elapsed.TotalSeconds / calls / 2), 1, 100_000);

        var oursTimes = new List<double>();
        var theirTimes = new List<double>();
        var budget = Stopwatch.StartNew();
        while (oursTimes.Count < 3 || budget.Elapsed.TotalSeconds < seconds)
        {
            oursTimes.Add(Time(ours, batch));
            if (theirs is not null) theirTimes.Add(Time(theirs, batch));
        }

        string label = $"{m}x{k}x{n}";
        double oursBest = flops / oursTimes.Min() / 1e9;
        Console.Error.WriteLine($"# {label}: reps={oursTimes.Count}x{batch} ours best={oursBest:F1} median={flops / Median(oursTimes) / 1e9:F1}" +
            (theirs is null ? "" : $" openblas best={flops / theirTimes.Min() / 1e9:F1} median={flops / Median(theirTimes) / 1e9:F1}"));
        if (theirs is null)
            return string.Create(CultureInfo.InvariantCulture, $"gemm {label} ours={oursBest:F1} openblas=n/a ratio=n/a");
        double theirBest = flops / theirTimes.Min() / 1e9;
        return string.Create(CultureInfo.InvariantCulture, $"gemm {label} ours={oursBest:F1} openblas={theirBest:F1} ratio={oursBest / theirBest:F2}");
    }

    private static Action BFloat16Product(int m, int n, int k, bool transB, float[] a, float[] b, float[] c, int threads)
    {
        // Truncation is enough here: the values only need to be bfloat16 numbers, not the nearest ones.
        ushort[] bits = b.Select(x => (ushort)(BitConverter.SingleToUInt32Bits(x) >> 16)).ToArray();
        int ldb = transB ? k : n;
        return () => Gemm.SgemmBf16(GemmIsaInfo.Best, threads, false, transB, m, n, k, 1f, a, k, bits, ldb, 0f, c, n);
    }

    private static Action HalfProduct(int m, int n, int k, bool transB, float[] a, float[] b, float[] c, int threads)
    {
        Half[] halves = b.Select(x => (Half)x).ToArray();
        int ldb = transB ? k : n;
        return () => Gemm.SgemmF16(GemmIsaInfo.Best, threads, false, transB, m, n, k, 1f, a, k, halves, ldb, 0f, c, n);
    }

    private static Func<double> s_clock = WallSeconds;

    private static double WallSeconds() => Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;

    /// <summary>Seconds per call, averaged over a batch of calls.</summary>
    private static double Time(Action action, int batch)
    {
        double start = s_clock();
        for (int i = 0; i < batch; i++) action();
        return (s_clock() - start) / batch;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static float[] RandomArray(Random random, int count)
    {
        var x = GC.AllocateUninitializedArray<float>(count);
        for (int i = 0; i < x.Length; i++) x[i] = (float)(random.NextDouble() * 2 - 1);
        return x;
    }
}
