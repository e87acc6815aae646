namespace Microsoft.ML.Peft.Tuners;

/// <summary>
/// An adapter configuration or adapter file that cannot be used: a malformed or unsupported adapter_config.json field,
/// a target that matches nothing, or adapter weights whose keys or shapes disagree with the model. The message names
/// the file, field, module or tensor at fault.
/// </summary>
public sealed class PeftConfigException : Exception
{
    /// <summary>An exception with a message.</summary>
    public PeftConfigException(string message)
        : base(message)
    {
    }

    /// <summary>An exception with a message and the underlying cause.</summary>
    public PeftConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>An exception with no message (prefer the other constructors).</summary>
    public PeftConfigException()
    {
    }
}
