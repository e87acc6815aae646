namespace Microsoft.ML.Peft.Ensembles;

/// <summary>
/// The Stein variational gradient (Liu and Wang 2016) of n particles with an RBF kernel, written as the direction a
/// gradient-descent optimizer should follow:
/// <code>
/// G_i = (1/n) Σ_j [ k(θ_j, θ_i)·∇L(θ_j) − (T/N)·∇_{θ_j} k(θ_j, θ_i) ],   k(a, b) = exp(−‖a − b‖² / H)
/// </code>
/// where L is the mean training loss, so log p(θ | D) = −(N/T)·L(θ) + const and θ ← θ − lr·G_i moves along SVGD's
/// φ(θ_i) = (N/T)·(−G_i). The first term pulls particles towards high posterior density (smoothed by the kernel),
/// the second pushes them apart. Bandwidth by the median heuristic of the authors' code: H = med / log(n + 1), med
/// the median of the n×n matrix of squared distances (diagonal zeros included). One particle gives G = ∇L exactly.
/// </summary>
public static class SvgdKernel
{
    /// <summary>
    /// Directions G_i for particles <paramref name="theta"/> with loss gradients <paramref name="gradients"/> (each a
    /// flattened parameter vector, all of one length); <paramref name="repulsionScale"/> is T/N. Returns the bandwidth
    /// H used (<paramref name="bandwidth"/> when given, else the median heuristic; 1 when all particles coincide).
    /// </summary>
    public static double Directions(IReadOnlyList<double[]> theta, IReadOnlyList<double[]> gradients, double repulsionScale,
        Span<double[]> directions, double? bandwidth = null)
    {
        ArgumentNullException.ThrowIfNull(theta);
        ArgumentNullException.ThrowIfNull(gradients);
        int n = theta.Count;
        if (n == 0 || gradients.Count != n || directions.Length != n) throw new ArgumentException($"{n} particles, {gradients.Count} gradients and {directions.Length} outputs must agree");
        int d = theta[0].Length;
        var squared = new double[n, n];
        for (int i = 0; i < n; i++)
        {
            for (int j = i + 1; j < n; j++)
            {
                double s = 0;
                for (int e = 0; e < d; e++)
                {
                    double diff = theta[i][e] - theta[j][e];
                    s += diff * diff;
                }
                squared[i, j] = squared[j, i] = s;
            }
        }
        double h = bandwidth ?? MedianHeuristic(squared, n);
        if (!(h > 0)) throw new ArgumentOutOfRangeException(nameof(bandwidth), h, "the kernel bandwidth must be positive");
        for (int i = 0; i < n; i++)
        {
            var g = directions[i] ??= new double[d];
            Array.Clear(g);
            for (int j = 0; j < n; j++)
            {
                double k = Math.Exp(-squared[i, j] / h);
                // ∇_{θ_j} k(θ_j, θ_i) = −(2/H)(θ_j − θ_i)·k, so −(T/N)·∇k = (2T/(N·H))·k·(θ_j − θ_i).
                double repulsion = repulsionScale * 2 / h * k;
                var gj = gradients[j];
                var tj = theta[j];
                var ti = theta[i];
                for (int e = 0; e < d; e++) g[e] += k * gj[e] + repulsion * (tj[e] - ti[e]);
            }
            if (n > 1)
            {
                for (int e = 0; e < d; e++) g[e] /= n;
            }
        }
        return h;
    }

    private static double MedianHeuristic(double[,] squared, int n)
    {
        if (n == 1) return 1;
        var all = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++) all[i * n + j] = squared[i, j];
        }
        Array.Sort(all);
        double median = all.Length % 2 == 1 ? all[all.Length / 2] : 0.5 * (all[all.Length / 2 - 1] + all[all.Length / 2]);
        return median > 0 ? median / Math.Log(n + 1) : 1;
    }
}
