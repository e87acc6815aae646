namespace Microsoft.ML.Peft.Hub;

/// <summary>
/// A model could not be resolved: the hub refused or failed a request, a download did not match its checksum, or
/// offline mode found the files missing from the cache. The message names the repository and file.
/// </summary>
public sealed class HubException : IOException
{
    /// <summary>Creates the exception.</summary>
    public HubException(string message, Exception? inner = null) : base(message, inner)
    {
    }
}
