using System.Text;

namespace Microsoft.ML.Peft.InstructionTuning;

/// <summary>
/// Turns an (instruction, input) pair into the prompt text the model continues with its response. Placeholders are
/// <c>{instruction}</c> and <c>{input}</c>; they are substituted in one pass, so braces inside the user's text are
/// never interpreted. <see cref="Alpaca"/> is Stanford Alpaca's template, the default.
/// </summary>
public sealed class PromptTemplate
{
    /// <summary>The placeholder replaced by the instruction.</summary>
    public const string InstructionPlaceholder = "{instruction}";

    /// <summary>The placeholder replaced by the input.</summary>
    public const string InputPlaceholder = "{input}";

    /// <summary>
    /// A template.
    /// </summary>
    /// <param name="withInput">Used when the input is non-empty; must contain <c>{input}</c>.</param>
    /// <param name="withoutInput">Used when the input is empty; must not contain <c>{input}</c>. Null: <paramref name="withInput"/> with an empty input.</param>
    /// <exception cref="ArgumentException">A template misses a placeholder it needs or has one it must not have.</exception>
    public PromptTemplate(string withInput, string? withoutInput = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(withInput);
        if (!withInput.Contains(InputPlaceholder, StringComparison.Ordinal))
            throw new ArgumentException($"the prompt template for rows with an input must contain {InputPlaceholder}: \"{withInput}\"", nameof(withInput));
        if (withoutInput is not null && withoutInput.Contains(InputPlaceholder, StringComparison.Ordinal))
            throw new ArgumentException($"the prompt template for rows without an input must not contain {InputPlaceholder}: \"{withoutInput}\"", nameof(withoutInput));
        WithInput = withInput;
        WithoutInput = withoutInput;
    }

    /// <summary>Stanford Alpaca's prompt (its PROMPT_DICT: "prompt_input" and "prompt_no_input").</summary>
    public static PromptTemplate Alpaca { get; } = new(
        "Below is an instruction that describes a task, paired with an input that provides further context. " +
        "Write a response that appropriately completes the request.\n\n" +
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
        "### Instruction:\n{instruction}\n\n### Response:\n");

    /// <summary>The template for rows with an input.</summary>
    public string WithInput { get; }

    /// <summary>The template for rows without an input, or null (then <see cref="WithInput"/> is used).</summary>
    public string? WithoutInput { get; }

    /// <summary>The prompt for <paramref name="instruction"/> and <paramref name="input"/> (null/empty input: the no-input template).</summary>
    public string Format(string? instruction, string? input)
    {
        instruction ??= "";
        input ??= "";
        string template = input.Length == 0 && WithoutInput is not null ? WithoutInput : WithInput;
        var text = new StringBuilder(template.Length + instruction.Length + input.Length);
        int i = 0;
        while (i < template.Length)
        {
            if (string.CompareOrdinal(template, i, InstructionPlaceholder, 0, InstructionPlaceholder.Length) == 0)
            {
                text.Append(instruction);
                i += InstructionPlaceholder.Length;
            }
            else if (string.CompareOrdinal(template, i, InputPlaceholder, 0, InputPlaceholder.Length) == 0)
            {
                text.Append(input);
                i += InputPlaceholder.Length;
            }
            else
            {
                text.Append(template[i++]);
            }
        }
        return text.ToString();
    }
}
