namespace Microsoft.ML.Peft.IO;

/// <summary>
/// Writes a file so that readers see either the old content or the complete new content, never a torn file: the
/// bytes go to a temporary file in the same folder (same file system, so the final rename is atomic), are flushed to
/// disk, and the temporary file is then renamed over the target. On failure the temporary file is removed.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> with the content produced by <paramref name="write"/>.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no parent folder", nameof(path));
        Directory.CreateDirectory(folder);
        string temp = TempPathFor(full);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Atomically writes <paramref name="bytes"/> to <paramref name="path"/>.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }

    /// <summary>Atomically writes UTF-8 text (no byte-order mark) to <paramref name="path"/>.</summary>
    public static void WriteAllText(string path, string text) =>
        WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>A fresh hidden temporary name beside <paramref name="fullPath"/>.</summary>
    internal static string TempPathFor(string fullPath) =>
        Path.Combine(Path.GetDirectoryName(fullPath)!, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: a leftover hidden .tmp file is harmless and never read.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
