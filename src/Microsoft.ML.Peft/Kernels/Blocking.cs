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

    /// <summary>Blocking for an m×n×k product whose threads each own at most <paramref name="rowsPerThread"/> rows.</summary>
    public static Blocking For<TKernel>(int m, int n, int k, int rowsPerThread)
        where TKernel : struct, IMicroKernel => new(
            Even(Math.Min(m, rowsPerThread), TKernel.MC, TKernel.MR),
            Even(k, TKernel.KC, 1),
            Even(n, TKernel.NC, TKernel.NR),
            TKernel.MR,
            TKernel.NR);

    public static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    /// <summary>The smallest multiple of <paramref name="multiple"/> that splits total into as few blocks ≤ max as possible.</summary>
    private static int Even(int total, int max, int multiple)
    {
        if (total <= 0) return multiple;
        int blocks = (total + max - 1) / max;
        return Math.Min(max, RoundUp((total + blocks - 1) / blocks, multiple));
    }
}
