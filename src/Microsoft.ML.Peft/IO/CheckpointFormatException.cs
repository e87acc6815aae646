namespace Microsoft.ML.Peft.IO;

/// <summary>
/// A checkpoint file is malformed or unsafe. The message always names the file and, where one is at fault, the tensor
/// or field. Thrown before any tensor data is read. (<see cref="InvalidDataException"/> is sealed, so this derives
/// from <see cref="IOException"/>: callers that catch I/O failures when loading a file catch this too.)
/// </summary>
public class CheckpointFormatException : IOException
{
    /// <summary>Creates the exception; <paramref name="message"/> should already name the file.</summary>
    public CheckpointFormatException(string filePath, string? tensorName, string message, Exception? inner = null)
        : base(message, inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The file (or in-memory name) that failed validation.</summary>
    public string FilePath { get; }

    /// <summary>The tensor or header field at fault, when there is one.</summary>
    public string? TensorName { get; }
}

/// <summary>A safetensors file (or its sharded index) violates the format specification.</summary>
public sealed class SafeTensorsFormatException : CheckpointFormatException
{
    /// <summary>Creates the exception with a message prefixed by the file and tensor names.</summary>
    public SafeTensorsFormatException(string filePath, string? tensorName, string detail, Exception? inner = null)
        : base(filePath, tensorName, Compose(filePath, tensorName, detail), inner)
    {
    }

    internal static string Compose(string filePath, string? tensorName, string detail) =>
        tensorName is null ? $"{filePath}: {detail}" : $"{filePath}: tensor '{tensorName}': {detail}";
}

/// <summary>
/// A PyTorch checkpoint (zip + pickle) is malformed, uses a pickle feature outside the tensor-rebuild protocol, or
/// refers to a Python global that is not on the allow-list (<see cref="RefusedGlobal"/> then names it).
/// </summary>
public sealed class PickleFormatException : CheckpointFormatException
{
    /// <summary>Creates the exception with a message prefixed by the file name.</summary>
    public PickleFormatException(string filePath, string detail, string? tensorName = null, string? refusedGlobal = null, Exception? inner = null)
        : base(filePath, tensorName, SafeTensorsFormatException.Compose(filePath, tensorName, detail), inner)
    {
        RefusedGlobal = refusedGlobal;
    }

    /// <summary>The fully qualified Python global (e.g. "os.system") that was refused, if that is the fault.</summary>
    public string? RefusedGlobal { get; }
}
