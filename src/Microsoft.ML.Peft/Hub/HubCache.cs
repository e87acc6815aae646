using Microsoft.ML.Peft.IO;

namespace Microsoft.ML.Peft.Hub;

/// <summary>
/// The huggingface_hub cache layout for one repository, so that caches written by Python and by this library are
/// interchangeable: <c>models--{owner}--{name}/blobs/{etag}</c> holds content, <c>snapshots/{commit}/{file}</c>
/// links to it, and <c>refs/{revision}</c> names the commit a branch resolved to. Partial downloads live at
/// <c>blobs/{etag}.incomplete</c>.
/// </summary>
internal sealed class HubCache
{
    public HubCache(string cacheRoot, string repoId)
    {
        RepoFolder = Path.Combine(cacheRoot, "models--" + repoId.Replace("/", "--", StringComparison.Ordinal));
    }

    public string RepoFolder { get; }

    public string BlobPath(string etag) => Path.Combine(RepoFolder, "blobs", etag);

    public string SnapshotFolder(string commit) => Path.Combine(RepoFolder, "snapshots", commit);

    /// <summary>The commit a revision resolved to when last online, or the revision itself if it is a commit hash.</summary>
    public string? ReadRef(string revision)
    {
        if (IsCommitHash(revision)) return revision;
        string path = Path.Combine(RepoFolder, "refs", revision);
        return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
    }

    public void WriteRef(string revision, string commit)
    {
        if (revision != commit) AtomicFile.WriteAllText(Path.Combine(RepoFolder, "refs", revision), commit);
    }

    /// <summary>Makes <c>snapshots/{commit}/{file}</c> point at the blob: a relative symlink, or a copy where links are not allowed.</summary>
    public void LinkIntoSnapshot(string commit, string file, string blobPath)
    {
        string target = Path.Combine(SnapshotFolder(commit), file);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        if (File.Exists(target) || Directory.Exists(target)) File.Delete(target);
        try
        {
            File.CreateSymbolicLink(target, Path.GetRelativePath(Path.GetDirectoryName(target)!, blobPath));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            File.Copy(blobPath, target, overwrite: true);
        }
    }

    /// <summary>Whether a snapshot file exists and (if a link) its blob does too.</summary>
    public bool HasSnapshotFile(string commit, string file)
    {
        var info = new FileInfo(Path.Combine(SnapshotFolder(commit), file));
        if (!info.Exists) return false;
        return info.LinkTarget is null || info.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true };
    }

    public static bool IsCommitHash(string revision) =>
        revision.Length == 40 && revision.All(char.IsAsciiHexDigitLower);
}
