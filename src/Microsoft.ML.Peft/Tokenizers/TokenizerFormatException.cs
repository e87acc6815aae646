namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// A tokenizer file (tokenizer.json, vocab.txt, vocab.json, merges.txt, tokenizer.model, tokenizer_config.json, ...)
/// is malformed, inconsistent, or describes a component this library does not implement.
/// The message always names the file and the field (JSON path, line number or protobuf field) at fault.
/// </summary>
public sealed class TokenizerFormatException : FormatException
{
    /// <summary>Creates the exception for <paramref name="filePath"/>, naming <paramref name="field"/>.</summary>
    public TokenizerFormatException(string filePath, string field, string problem, Exception? innerException = null)
        : base($"{filePath}: {field}: {problem}", innerException)
    {
        FilePath = filePath;
        Field = field;
    }

    /// <summary>The file (or the caller-supplied source name for streams) that is at fault.</summary>
    public string FilePath { get; }

    /// <summary>The field within the file: a JSON path such as <c>model.merges[12]</c>, a line, or a protobuf field.</summary>
    public string Field { get; }
}
