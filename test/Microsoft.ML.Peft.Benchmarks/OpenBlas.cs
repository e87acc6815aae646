using System.Runtime.InteropServices;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// The system OpenBLAS (Debian's libopenblas0-pthread), bound at run time through <see cref="NativeLibrary"/> so the
/// benchmark still runs, printing n/a, where it is not installed. Only this benchmark program touches it; the library
/// never depends on it.
/// </summary>
internal sealed unsafe class OpenBlas
{
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;

    private static readonly string[] Candidates =
    [
        "libopenblas.so.0",
        "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "libopenblas.so",
    ];

    private readonly delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> _sgemm;
    private readonly delegate* unmanaged[Cdecl]<int, void> _setNumThreads;
    private readonly delegate* unmanaged[Cdecl]<byte*> _getCoreName;

    private OpenBlas(nint handle, string path)
    {
        Path = path;
        _sgemm = (delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)
            NativeLibrary.GetExport(handle, "cblas_sgemm");
        if (NativeLibrary.TryGetExport(handle, "openblas_set_num_threads", out nint set))
            _setNumThreads = (delegate* unmanaged[Cdecl]<int, void>)set;
        if (NativeLibrary.TryGetExport(handle, "openblas_get_corename", out nint core))
            _getCoreName = (delegate* unmanaged[Cdecl]<byte*>)core;
    }

    /// <summary>The file that was loaded.</summary>
    public string Path { get; }

    /// <summary>The kernel family OpenBLAS picked for this processor (e.g. "Haswell"), or "?".</summary>
    public string CoreName => _getCoreName == null ? "?" : Marshal.PtrToStringAnsi((nint)_getCoreName()) ?? "?";

    /// <summary>Loads OpenBLAS, or returns null when no candidate library exports cblas_sgemm.</summary>
    public static OpenBlas? TryLoad()
    {
        foreach (string candidate in Candidates)
        {
            if (NativeLibrary.TryLoad(candidate, out nint handle) && NativeLibrary.TryGetExport(handle, "cblas_sgemm", out _))
                return new OpenBlas(handle, candidate);
        }
        return null;
    }

    public void SetThreads(int threads)
    {
        if (_setNumThreads != null) _setNumThreads(threads);
    }

    /// <summary>Row-major <c>cblas_sgemm</c>.</summary>
    public void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb,
        float beta, float* c, int ldc) =>
        _sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
