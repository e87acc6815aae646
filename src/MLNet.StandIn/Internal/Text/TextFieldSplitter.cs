namespace Microsoft.ML.Internal;

/// <summary>Splits one line into fields: separators, optional quoting (a quote inside a quoted field is doubled) and trimming.</summary>
internal sealed class TextFieldSplitter
{
    private readonly char[] _separators;
    private readonly bool _allowQuoting;
    private readonly bool _trim;
    private readonly char _quote;
    private readonly List<string> _fields = new();
    private readonly System.Text.StringBuilder _buffer = new();

    public TextFieldSplitter(char[] separators, bool allowQuoting, bool trim, char quote)
    {
        _separators = separators;
        _allowQuoting = allowQuoting;
        _trim = trim;
        _quote = quote;
    }

    /// <summary>The fields of <paramref name="line"/> (the returned list is reused by the next call).</summary>
    public List<string> Split(string line, Func<string> where)
    {
        _fields.Clear();
        int i = 0;
        while (true)
        {
            int start = i;
            while (_trim && i < line.Length && line[i] == ' ' && !IsSeparator(' '))
                i++;
            if (_allowQuoting && i < line.Length && line[i] == _quote)
            {
                _buffer.Clear();
                i++;
                while (true)
                {
                    if (i >= line.Length)
                        throw new FormatException($"{where()}: unterminated quoted field starting at character {start + 1}.");
                    if (line[i] == _quote)
                    {
                        if (i + 1 < line.Length && line[i + 1] == _quote)
                        {
                            _buffer.Append(_quote);
                            i += 2;
                            continue;
                        }
                        i++;
                        break;
                    }
                    _buffer.Append(line[i++]);
                }
                while (_trim && i < line.Length && char.IsWhiteSpace(line[i]) && !IsSeparator(line[i]))
                    i++;
                if (i < line.Length && !IsSeparator(line[i]))
                    throw new FormatException($"{where()}: unexpected character '{line[i]}' after a quoted field at character {i + 1}.");
                _fields.Add(_buffer.ToString());
            }
            else
            {
                int end = i;
                while (end < line.Length && !IsSeparator(line[end]))
                    end++;
                string field = line.Substring(start, end - start);
                _fields.Add(_trim ? field.Trim() : field);
                i = end;
            }
            if (i >= line.Length)
                return _fields;
            i++; // skip the separator
        }
    }

    private bool IsSeparator(char c) => Array.IndexOf(_separators, c) >= 0;
}
