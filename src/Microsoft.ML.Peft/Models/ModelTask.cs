namespace Microsoft.ML.Peft.Models;

/// <summary>Which head sits on the transformer (Hugging Face's <c>AutoModelFor…</c> classes).</summary>
public enum ModelTask
{
    /// <summary>One label per sequence (<c>*ForSequenceClassification</c>): logits [batch, num_labels].</summary>
    SequenceClassification,

    /// <summary>One label per token (<c>*ForTokenClassification</c>, encoders and decoders): logits [batch, seq, num_labels].</summary>
    TokenClassification,

    /// <summary>Next-token prediction (<c>*ForCausalLM</c>, <c>GPT2LMHeadModel</c>, decoders): logits [batch, seq, vocab].</summary>
    CausalLM,
}
