namespace Microsoft.ML.Peft.Models;

/// <summary>
/// A checkpoint does not fit the model its config.json describes: a tensor is missing, has another shape, or has a dtype
/// that cannot hold weights. Thrown before any weight is read or allocated; the message names the weights file, the
/// config file, the tensor and both shapes.
/// </summary>
public sealed class ModelLoadException : IOException
{
    /// <summary>Creates the exception.</summary>
    public ModelLoadException(string filePath, string? tensorName, string message, Exception? inner = null)
        : base(message, inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The weights (or config) file at fault.</summary>
    public string FilePath { get; }

    /// <summary>The first tensor at fault, when one is.</summary>
    public string? TensorName { get; }
}
