using System.Diagnostics;
using System.Globalization;
using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.Peft.LinearAlgebra;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// <c>eigen [--size N] [--count K] [--warm W]</c>: our <see cref="SymmetricEigenDecomposition"/> against MathNet.Numerics'
/// managed <c>Evd</c> (the peer) on K random symmetric PSD N×N matrices (X·Xᵀ, X N×2N Gaussian: like a K-FAC factor).
/// Prints, for each, the time of its first K decompositions in this fresh process (what a Laplace fit pays: it decomposes
/// about 16 factors of side 64–65 once per process, while the JIT has not yet optimised the code), then the median of W
/// warm calls. Ours runs first; the two share no code, so the order does not hand either a warm JIT.
/// </summary>
internal sealed class EigenBenchmark : IBenchmark
{
    public string Name => "eigen";

    public string Description => "symmetric eigendecomposition, ours vs MathNet.Numerics Evd: first K calls in a fresh process and warm median (default 64x64, K 16)";

    public int Run(string[] args)
    {
        int size = IntArg(args, "--size", 64), count = IntArg(args, "--count", 16), warm = IntArg(args, "--warm", 200);
        var matrices = RandomFactors(size, count, seed: 1);
        double oursCold = Seconds(() => { foreach (var m in matrices) SymmetricEigenDecomposition.Compute(m, size); });
        var peerMatrices = matrices.Select(m => Matrix<double>.Build.DenseOfRowMajor(size, size, m)).ToArray();
        double peerCold = Seconds(() => { foreach (var m in peerMatrices) m.Evd(Symmetricity.Symmetric); });
        double oursWarm = Median(warm, () => SymmetricEigenDecomposition.Compute(matrices[0], size));
        double peerWarm = Median(warm, () => peerMatrices[0].Evd(Symmetricity.Symmetric));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"eigen {size}x{size}: first {count} calls: ours {oursCold * 1e3:F1} ms, MathNet {peerCold * 1e3:F1} ms; warm median: ours {oursWarm * 1e3:F3} ms, MathNet {peerWarm * 1e3:F3} ms"));
        return 0;
    }

    private static double[][] RandomFactors(int size, int count, int seed)
    {
        var random = new GaussianRandom(seed);
        var result = new double[count][];
        for (int k = 0; k < count; k++)
        {
            var x = new double[size * 2 * size];
            for (int i = 0; i < x.Length; i++) x[i] = random.NextStandardNormal();
            var f = new double[size * size];
            for (int i = 0; i < size; i++)
            {
                for (int j = 0; j < size; j++)
                {
                    double s = 0;
                    for (int t = 0; t < 2 * size; t++) s += x[i * 2 * size + t] * x[j * 2 * size + t];
                    f[i * size + j] = s;
                }
            }
            result[k] = f;
        }
        return result;
    }

    private static double Seconds(Action action)
    {
        var watch = Stopwatch.StartNew();
        action();
        return watch.Elapsed.TotalSeconds;
    }

    private static double Median(int repeats, Action action)
    {
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++) times[i] = Seconds(action);
        Array.Sort(times);
        return times[repeats / 2];
    }

    private static int IntArg(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
