using System.Runtime.InteropServices;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// CPU time consumed by the calling thread (Linux <c>clock_gettime(CLOCK_THREAD_CPUTIME_ID)</c>). Single-threaded
/// timings taken with it exclude the time the thread spent descheduled, which on a machine shared with other processes
/// is most of the noise in wall-clock timings.
/// </summary>
internal static partial class ThreadCpuClock
{
    private const int ClockThreadCpuTimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clockId, out TimeSpec time);

    public static bool IsAvailable => OperatingSystem.IsLinux();

    /// <summary>Seconds of CPU time used by this thread so far.</summary>
    public static double Now()
    {
        if (ClockGetTime(ClockThreadCpuTimeId, out TimeSpec time) != 0)
            throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed.");
        return time.Seconds + time.Nanoseconds * 1e-9;
    }
}
