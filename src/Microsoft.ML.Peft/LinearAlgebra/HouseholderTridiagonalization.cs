using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Peft.LinearAlgebra;

/// <summary>
/// Reduces a symmetric matrix to tridiagonal form T = Qᵀ·A·Q with n − 2 Householder reflections, returning the
/// diagonal, the sub-diagonal and Qᵀ (row-major, so its rows are the columns of Q).
/// </summary>
/// <remarks>
/// Step k reflects x = A[k+1:, k] onto α·e₁ with H = I − w·wᵀ (‖w‖² = 2) and updates the trailing block
/// symmetrically, B ← H·B·H = B − w·qᵀ − q·wᵀ with p = B·w and q = p − ½(wᵀp)·w: one matrix-vector product (row
/// dot products) and one rank-2 update (row axpys), all on contiguous rows. Qᵀ = H_{n−3}···H₀ is then accumulated
/// right-to-left so each step only touches the trailing block it changes. Returning Qᵀ rather than Q lets the QL
/// iteration rotate contiguous rows.
/// </remarks>
internal static class HouseholderTridiagonalization
{
    /// <param name="a">Symmetric n×n matrix, overwritten (used as workspace).</param>
    /// <param name="n">Order.</param>
    /// <param name="diagonal">Receives T's diagonal (length n).</param>
    /// <param name="subDiagonal">Receives T[i+1, i] at index i (length n, last entry 0).</param>
    /// <returns>Qᵀ, n×n row-major.</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double[] Reduce(double[] a, int n, double[] diagonal, double[] subDiagonal)
    {
        var reflectors = new double[n * n]; // reflector k lives in row k, columns k+1..n-1
        var p = new double[n];
        for (int k = 0; k < n - 2; k++)
        {
            int m = n - k - 1;
            // The column below the diagonal equals the row right of it (symmetry), which is contiguous.
            Span<double> x = a.AsSpan(k * n + k + 1, m);
            double tailNorm = Math.Sqrt(Dot(x[1..], x[1..]));
            double x0 = x[0];
            diagonal[k] = a[k * n + k];
            Span<double> w = reflectors.AsSpan(k * n + k + 1, m);
            if (tailNorm == 0)
            {
                subDiagonal[k] = x0; // already tridiagonal in this column: H = I
                continue;
            }
            double norm = Math.Sqrt(x0 * x0 + tailNorm * tailNorm);
            double alpha = x0 > 0 ? -norm : norm; // sign chosen so x0 − α never cancels
            subDiagonal[k] = alpha;
            x.CopyTo(w);
            w[0] -= alpha;
            Scale(w, Math.Sqrt(2) / Math.Sqrt(Dot(w, w)));

            // p = B·w over the trailing block B = A[k+1:, k+1:].
            Span<double> pk = p.AsSpan(0, m);
            for (int i = 0; i < m; i++) pk[i] = Dot(a.AsSpan((k + 1 + i) * n + k + 1, m), w);
            double half = 0.5 * Dot(w, pk);
            Axpy(-half, w, pk); // q
            for (int i = 0; i < m; i++)
            {
                Span<double> row = a.AsSpan((k + 1 + i) * n + k + 1, m);
                Axpy(-w[i], pk, row);
                Axpy(-pk[i], w, row);
            }
        }
        if (n >= 2)
        {
            diagonal[n - 2] = a[(n - 2) * n + n - 2];
            subDiagonal[n - 2] = a[(n - 1) * n + n - 2];
        }
        if (n >= 1)
        {
            diagonal[n - 1] = a[(n - 1) * n + n - 1];
            subDiagonal[n - 1] = 0;
        }

        // Qᵀ = H_{n−3}·…·H₀ built as I·H_{n−3}·…·H₀ (right multiplications), so step k touches only rows and
        // columns > k: row ← row − (row·w)·wᵀ.
        var qt = DenseMatrix.Identity(n);
        for (int k = n - 3; k >= 0; k--)
        {
            int m = n - k - 1;
            ReadOnlySpan<double> w = reflectors.AsSpan(k * n + k + 1, m);
            if (Dot(w, w) == 0) continue;
            for (int i = k + 1; i < n; i++)
            {
                Span<double> row = qt.AsSpan(i * n + k + 1, m);
                Axpy(-Dot(row, w), w, row);
            }
        }
        return qt;
    }

    // Own dot/axpy/scale instead of TensorPrimitives: a Laplace fit decomposes ~16 small factors once per process, too
    // few calls for tiered JIT to replace TensorPrimitives' generic tier-0 code (the first 16 decompositions of 64×64
    // took 4× as long with it; docs/BENCHMARKS.md, "Laplace-LoRA, session 7"). Inlined here, they are compiled
    // optimised together with Reduce.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Dot(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        int n = x.Length, i = 0;
        ref double xr = ref MemoryMarshal.GetReference(x);
        ref double yr = ref MemoryMarshal.GetReference(y);
        var acc = Vector256<double>.Zero;
        for (; i <= n - Vector256<double>.Count; i += Vector256<double>.Count)
            acc += Vector256.LoadUnsafe(ref xr, (nuint)i) * Vector256.LoadUnsafe(ref yr, (nuint)i);
        double sum = Vector256.Sum(acc);
        for (; i < n; i++) sum += Unsafe.Add(ref xr, i) * Unsafe.Add(ref yr, i);
        return sum;
    }

    /// <summary>y ← y + a·x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Axpy(double a, ReadOnlySpan<double> x, Span<double> y)
    {
        int n = x.Length, i = 0;
        ref double xr = ref MemoryMarshal.GetReference(x);
        ref double yr = ref MemoryMarshal.GetReference(y);
        var va = Vector256.Create(a);
        for (; i <= n - Vector256<double>.Count; i += Vector256<double>.Count)
            (Vector256.LoadUnsafe(ref yr, (nuint)i) + va * Vector256.LoadUnsafe(ref xr, (nuint)i)).StoreUnsafe(ref yr, (nuint)i);
        for (; i < n; i++) Unsafe.Add(ref yr, i) += a * Unsafe.Add(ref xr, i);
    }

    private static void Scale(Span<double> x, double a)
    {
        for (int i = 0; i < x.Length; i++) x[i] *= a;
    }
}
