namespace Microsoft.ML.Peft.Models;

/// <summary>What a prompt-learning method must know about a backbone to size its vectors (PEFT's token_dim etc.).</summary>
/// <param name="Architecture">The backbone's class name, for messages.</param>
/// <param name="HiddenSize">token_dim of input prompts.</param>
/// <param name="Layers">num_layers.</param>
/// <param name="AttentionHeads">num_attention_heads (query heads).</param>
/// <param name="KeyValueHeads">Key/value heads (fewer under grouped-query attention).</param>
/// <param name="HeadDim">Features per head.</param>
/// <param name="MaxPositions">max_position_embeddings (n_positions): virtual tokens plus real tokens must fit.</param>
/// <param name="IsDecoder">Causal (prefixes are seen by every position) rather than bidirectional.</param>
public sealed record PromptGeometry(string Architecture, int HiddenSize, int Layers, int AttentionHeads, int KeyValueHeads, int HeadDim,
    int MaxPositions, bool IsDecoder);
