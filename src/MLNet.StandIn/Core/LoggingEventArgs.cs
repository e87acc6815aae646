using Microsoft.ML.Runtime;

namespace Microsoft.ML;

/// <summary>A log message raised by <see cref="MLContext.Log"/>.</summary>
public class LoggingEventArgs : EventArgs
{
    /// <summary>A message with no kind or source.</summary>
    public LoggingEventArgs(string message)
    {
        RawMessage = message;
        Message = message;
        Source = "";
    }

    /// <summary>A message of <paramref name="kind"/> from <paramref name="source"/>.</summary>
    public LoggingEventArgs(string message, ChannelMessageKind kind, string source)
    {
        RawMessage = message;
        Kind = kind;
        Source = source;
        Message = $"[Source={source}, Kind={kind}] {message}";
    }

    /// <summary>The message as written by the component.</summary>
    public string RawMessage { get; }

    /// <summary>The kind of message.</summary>
    public ChannelMessageKind Kind { get; }

    /// <summary>The component that wrote the message.</summary>
    public string Source { get; }

    /// <summary>The message with its source and kind.</summary>
    public string Message { get; }
}
