using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>The instruction set a GEMM call runs its micro-kernel and packing with.</summary>
/// <remarks>
/// The public entry points always use <see cref="GemmIsaInfo.Best"/>; tests pass a weaker one explicitly through the
/// internal overloads so that every code path is exercised on an AVX-512 machine (no global switch, so tests running in
/// parallel never change each other's code path).
/// </remarks>
internal enum GemmIsa
{
    /// <summary>Plain C# arithmetic, runs anywhere.</summary>
    Scalar,

    /// <summary>256-bit AVX2 with FMA3: 6×16 register tile.</summary>
    Avx2,

    /// <summary>512-bit AVX-512F: 14×32 register tile.</summary>
    Avx512,
}

/// <summary>Which <see cref="GemmIsa"/> values this machine can run.</summary>
internal static class GemmIsaInfo
{
    /// <summary>The fastest instruction set supported by this processor.</summary>
    public static GemmIsa Best { get; } =
        Avx512F.IsSupported ? GemmIsa.Avx512 :
        Avx2.IsSupported && Fma.IsSupported ? GemmIsa.Avx2 :
        GemmIsa.Scalar;

    /// <summary>True when <paramref name="isa"/> can run here.</summary>
    public static bool IsSupported(GemmIsa isa) => isa switch
    {
        GemmIsa.Scalar => true,
        GemmIsa.Avx2 => Avx2.IsSupported && Fma.IsSupported,
        GemmIsa.Avx512 => Avx512F.IsSupported,
        _ => false,
    };
}
