namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>The roles a special token can play (the Hugging Face <c>bos_token</c>, <c>eos_token</c>, ... keys).</summary>
public enum SpecialTokenRole
{
    /// <summary><c>bos_token</c>, e.g. &lt;s&gt;.</summary>
    BeginningOfSentence,

    /// <summary><c>eos_token</c>, e.g. &lt;/s&gt;.</summary>
    EndOfSentence,

    /// <summary><c>pad_token</c>, e.g. [PAD].</summary>
    Padding,

    /// <summary><c>unk_token</c>, e.g. [UNK].</summary>
    Unknown,

    /// <summary><c>cls_token</c>, e.g. [CLS].</summary>
    Classification,

    /// <summary><c>sep_token</c>, e.g. [SEP].</summary>
    Separator,

    /// <summary><c>mask_token</c>, e.g. [MASK].</summary>
    Masking,
}
