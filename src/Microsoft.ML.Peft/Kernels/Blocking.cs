namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// Block sizes for one call: the kernel's nominal KC/MC/NC, evened out so that no block is a sliver (k = 300 with
/// KC = 256 runs as 2 × 150 rather than 256 + 44, which would pay the C update for only 44 steps).
/// </summary>
internal readonly struct Blocking
{
    private Blocking(int mc, int kc, int nc, int mr, int nr)
    {
        Mc = mc;
        Kc = kc;
        Nc = nc;
        PackedAFloats = RoundUp(mc, mr) * kc;
        PackedBFloats = RoundUp(nc, nr) * kc;
    }

    public int Mc { get; }

    public int Kc { get; }

    public int Nc { get; }

    public int PackedAFloats { get; }

    public int PackedBFloats { get; }

    /// <summary>
    /// Blocking for an m×n×k product; k slices are multiples of <paramref name="kGranularity"/> (the B source's
    /// <see cref="IBPanelSource.RowGranularity"/>), so each starts on a granule.
    /// </summary>
    public static Blocking For<TKernel>(int m, int n, int k, int kGranularity)
        where TKernel : struct, IMicroKernel => new(
            Even(m, TKernel.MC, TKernel.MR),
            Even(k, TKernel.KC, kGranularity),
            Even(n, TKernel.NC, TKernel.NR),
            TKernel.MR,
            TKernel.NR);

    public static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    /// <summary>
    /// A block size that is a multiple of <paramref name="multiple"/>, at most <paramref name="max"/> (rounded down to
    /// a multiple, but at least one multiple), and splits total into as few, as equal blocks as that allows.
    /// </summary>
    private static int Even(int total, int max, int multiple)
    {
        int cap = Math.Max(multiple, max / multiple * multiple);
        if (total <= 0) return multiple;
        int blocks = (total + cap - 1) / cap;
        return Math.Min(cap, RoundUp((total + blocks - 1) / blocks, multiple));
    }
}
