namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// A token matched verbatim in the input before normalisation and pre-tokenisation (Hugging Face "added tokens":
/// [CLS], &lt;|endoftext|&gt;, ...).
/// </summary>
/// <param name="Content">The exact text that is matched.</param>
/// <param name="Id">Its id.</param>
/// <param name="Special">Special tokens are dropped by <c>Decode(ids, skipSpecialTokens: true)</c>.</param>
/// <param name="LStrip">The match also swallows the whitespace to its left.</param>
/// <param name="RStrip">The match also swallows the whitespace to its right.</param>
/// <param name="SingleWord">Only matched when not adjacent to a letter, digit or '_'.</param>
public sealed record AddedToken(string Content, int Id, bool Special, bool LStrip = false, bool RStrip = false, bool SingleWord = false);
