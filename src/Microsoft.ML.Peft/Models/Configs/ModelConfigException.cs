namespace Microsoft.ML.Peft.Models.Configs;

/// <summary>A <c>config.json</c> is malformed or describes an unsupported or inconsistent model; names the file and field.</summary>
public sealed class ModelConfigException : IOException
{
    /// <summary>Creates the exception; the message is prefixed with the file and field.</summary>
    public ModelConfigException(string filePath, string? field, string detail, Exception? inner = null)
        : base(field is null ? $"{filePath}: {detail}" : $"{filePath}: field '{field}': {detail}", inner)
    {
        FilePath = filePath;
        Field = field;
    }

    /// <summary>The config file (or the name given to <see cref="ModelConfig.Parse"/>).</summary>
    public string FilePath { get; }

    /// <summary>The JSON field at fault, if one is.</summary>
    public string? Field { get; }
}
