using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.PromptTuning;

/// <summary>The starting values of a soft prompt (PEFT's <c>PromptEmbedding.__init__</c>).</summary>
internal static class PromptInitialization
{
    /// <summary>[n, hidden] rows for a backbone that is an <see cref="IInputEmbeddingsModel"/>.</summary>
    public static Tensor Rows(IPromptHost host, int n, PromptTuningInit init, IReadOnlyList<int>? textIds, Generator generator)
    {
        var table = host is IInputEmbeddingsModel m ? m.InputEmbeddingWeight
            : throw new PeftConfigException($"{host.PromptGeometry.Architecture} does not expose its word embeddings");
        return Rows(table, host.PromptGeometry.HiddenSize, n, init, textIds, generator);
    }

    /// <summary>
    /// RANDOM: N(0, 1) draws (torch.nn.Embedding); TEXT: the word embeddings of <paramref name="textIds"/> repeated
    /// and cut to n, as PEFT does; SAMPLE_VOCAB: the rows of n uniformly drawn ids.
    /// </summary>
    public static Tensor Rows(Tensor table, int hidden, int n, PromptTuningInit init, IReadOnlyList<int>? textIds, Generator generator)
    {
        if (table.Rank != 2 || table.Size(1) != hidden)
            throw new PeftConfigException($"the model's input embedding table {table} is not [vocab, {hidden}]");
        switch (init)
        {
            case PromptTuningInit.Random:
                using (TensorScope.Untracked()) return Tensor.Randn(generator, n, hidden);
            case PromptTuningInit.Text:
                if (textIds is not { Count: > 0 })
                    throw new PeftConfigException("prompt_tuning_init TEXT: pass the tokenizer's ids of prompt_tuning_init_text (PromptTuningConfig.InitTextTokenIds)");
                // PEFT: cut to num_virtual_tokens, or repeat the ids ⌈n / len⌉ times and cut.
                return CopyRows(table, Enumerable.Range(0, n).Select(i => textIds[i % textIds.Count]).ToArray());
            case PromptTuningInit.SampleVocab:
                int vocab = table.Size(0);
                return CopyRows(table, Enumerable.Range(0, n).Select(_ => (int)(generator.NextUInt64() % (ulong)vocab)).ToArray());
            default:
                throw new PeftConfigException($"unknown prompt_tuning_init {init}");
        }
    }

    private static Tensor CopyRows(Tensor table, int[] ids)
    {
        int vocab = table.Size(0);
        foreach (int id in ids)
        {
            if (id < 0 || id >= vocab) throw new PeftConfigException($"prompt init token id {id} is outside the vocabulary [0, {vocab})");
        }
        using (TensorScope.Untracked())
        using (Autograd.NoGrad())
        {
            var rows = table.Embedding(Tensor.FromInt32(ids, ids.Length));
            return (rows.DType == DType.Float32 ? rows : rows.To(DType.Float32)).Contiguous().Clone();
        }
    }
}
