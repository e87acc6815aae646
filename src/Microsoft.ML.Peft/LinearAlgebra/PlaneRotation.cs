using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Peft.LinearAlgebra;

/// <summary>
/// Applies a Givens/Jacobi plane rotation to two contiguous rows: x ← c·x − s·y, y ← s·x + c·y.
/// </summary>
/// <remarks>
/// The eigen and SVD routines keep the vectors they rotate as rows (not columns) precisely so that this inner loop
/// runs over contiguous memory; it is the hot loop of both the QL iteration and one-sided Jacobi, and is written with
/// 512/256-bit vectors because the rotation is two fused multiply-adds per element.
/// </remarks>
internal static class PlaneRotation
{
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Apply(Span<double> x, Span<double> y, double c, double s)
    {
        if (x.Length != y.Length) throw new ArgumentException("Rotated rows must have equal lengths.", nameof(y));
        int n = x.Length, i = 0;
        ref double xr = ref MemoryMarshal.GetReference(x);
        ref double yr = ref MemoryMarshal.GetReference(y);
        if (Vector512.IsHardwareAccelerated)
        {
            var vc = Vector512.Create(c);
            var vs = Vector512.Create(s);
            for (; i <= n - Vector512<double>.Count; i += Vector512<double>.Count)
            {
                var a = Vector512.LoadUnsafe(ref xr, (nuint)i);
                var b = Vector512.LoadUnsafe(ref yr, (nuint)i);
                (vc * a - vs * b).StoreUnsafe(ref xr, (nuint)i);
                (vs * a + vc * b).StoreUnsafe(ref yr, (nuint)i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vc = Vector256.Create(c);
            var vs = Vector256.Create(s);
            for (; i <= n - Vector256<double>.Count; i += Vector256<double>.Count)
            {
                var a = Vector256.LoadUnsafe(ref xr, (nuint)i);
                var b = Vector256.LoadUnsafe(ref yr, (nuint)i);
                (vc * a - vs * b).StoreUnsafe(ref xr, (nuint)i);
                (vs * a + vc * b).StoreUnsafe(ref yr, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            double a = Unsafe.Add(ref xr, i), b = Unsafe.Add(ref yr, i);
            Unsafe.Add(ref xr, i) = c * a - s * b;
            Unsafe.Add(ref yr, i) = s * a + c * b;
        }
    }
}
