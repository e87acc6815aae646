using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Generation;

/// <summary>
/// Autoregressive generation for <see cref="CausalLanguageModel"/>s (transformers' <c>generate</c>): the prompt runs
/// once, then one token per step against a preallocated <see cref="KvCache"/>, projecting only the last position onto
/// the vocabulary. Runs under <see cref="Autograd.NoGrad"/> and in evaluation mode (the model's mode is restored).
/// </summary>
/// <remarks>
/// Several prompts run as one left-padded batch, with transformers' generate-time positions (cumsum(mask) − 1 per
/// row), so each row continues exactly as it would alone. A finished row keeps being fed a padding token until every row
/// has finished; its result ends at its EOS / stop-string token.
/// <para>Soft prompts attached to the model (prompt tuning, P-tuning, prefix tuning / P-tuning v2, LLaMA-Adapter)
/// take part as in PEFT's <c>generate</c>: the first forward puts the n virtual tokens or the key/value prefix at the
/// front of the cache, every later step attends to them there, and the real tokens are numbered from n (PEFT prepends
/// n ones to the attention mask, so transformers' cumsum positions start at n).</para>
/// </remarks>
public static class TextGeneration
{
    /// <summary>Continues <paramref name="promptIds"/>; <paramref name="decode"/> (optional) fills the text and enables stop strings.</summary>
    public static GenerationResult Generate(this CausalLanguageModel model, IReadOnlyList<int> promptIds, GenerationOptions? options = null,
        Func<IReadOnlyList<int>, string>? decode = null)
    {
        ArgumentNullException.ThrowIfNull(promptIds);
        return Generate(model, [promptIds], options, decode)[0];
    }

    /// <summary>
    /// Encodes <paramref name="prompt"/> with the tokenizer (its special tokens included, e.g. Llama's BOS), generates,
    /// and decodes the continuation without special tokens into <see cref="GenerationResult.Text"/>.
    /// </summary>
    public static GenerationResult Generate(this CausalLanguageModel model, Tokenizer tokenizer, string prompt, GenerationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompt);
        var ids = tokenizer.Encode(prompt, options: new EncodeOptions { Padding = PaddingStrategy.DoNotPad }).InputIds;
        return Generate(model, ids, options, generated => tokenizer.Decode(generated, skipSpecialTokens: true));
    }

    /// <summary>Continues every prompt (one left-padded batch); results in prompt order.</summary>
    public static IReadOnlyList<GenerationResult> Generate(this CausalLanguageModel model, IReadOnlyList<IReadOnlyList<int>> prompts,
        GenerationOptions? options = null, Func<IReadOnlyList<int>, string>? decode = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompts);
        options ??= new GenerationOptions();
        options.Validate();
        if (prompts.Count == 0) throw new ArgumentException("no prompts", nameof(prompts));
        for (int i = 0; i < prompts.Count; i++)
        {
            if (prompts[i] is null || prompts[i].Count == 0) throw new ArgumentException($"prompt {i} is empty; start it with at least one token (e.g. BOS)", nameof(prompts));
            foreach (int id in prompts[i])
            {
                if ((uint)id >= (uint)model.VocabSize) throw new ArgumentOutOfRangeException(nameof(prompts), $"prompt {i} holds token id {id}, outside the vocabulary of {model.VocabSize}");
            }
        }
        if (options.StopStrings.Count > 0 && decode is null)
            throw new ArgumentException("stop strings need a decoder: pass decode or use the tokenizer overload", nameof(options));

        bool wasTraining = model.IsTraining;
        model.Eval();
        try
        {
            using (Autograd.NoGrad()) return new Run(model, prompts, options, decode).Execute();
        }
        finally
        {
            if (wasTraining) model.Train();
        }
    }

    /// <summary>The state of one batched generation.</summary>
    private sealed class Run
    {
        private readonly CausalLanguageModel model;
        private readonly GenerationOptions options;
        private readonly Func<IReadOnlyList<int>, string>? decode;
        private readonly IReadOnlyList<IReadOnlyList<int>> prompts;
        private readonly HashSet<int> eos;
        private readonly int rows;
        private readonly int promptLength;
        private readonly int[] mask;       // [rows, promptLength + MaxNewTokens], 1 = real token
        private readonly int[] nextPosition;
        private readonly List<int>[] generated;
        private readonly HashSet<int>[] seen;
        private readonly GenerationStopReason?[] stopped;
        private readonly int padId;
        private readonly int softPromptLength; // virtual tokens or prefix positions in front of every row

        public Run(CausalLanguageModel model, IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options, Func<IReadOnlyList<int>, string>? decode)
        {
            this.model = model;
            this.options = options;
            this.decode = decode;
            this.prompts = prompts;
            eos = [.. options.EosTokenIds ?? model.Config.EosTokenIds];
            rows = prompts.Count;
            promptLength = prompts.Max(p => p.Count);
            mask = new int[rows * (promptLength + options.MaxNewTokens)];
            nextPosition = new int[rows];
            generated = [.. Enumerable.Range(0, rows).Select(_ => new List<int>())];
            seen = [.. prompts.Select(p => new HashSet<int>(p))];
            stopped = new GenerationStopReason?[rows];
            padId = model.Config.PadTokenId ?? model.Config.EosTokenId ?? 0;
            var source = model.Decoder.PromptSource;
            softPromptLength = (source?.InputPromptLength ?? 0) + (source?.PrefixLength ?? 0);
        }

        public IReadOnlyList<GenerationResult> Execute()
        {
            if (options.MaxNewTokens > 0) Loop();
            return [.. Enumerable.Range(0, rows).Select(r => new GenerationResult(generated[r], stopped[r] ?? GenerationStopReason.MaxNewTokens, decode?.Invoke(generated[r])))];
        }

        private void Loop()
        {
            int width = promptLength + options.MaxNewTokens;
            var cache = model.Decoder.CreateCache(rows, softPromptLength + width);
            var rng = new Generator(options.Seed);
            var order = new int[model.VocabSize];
            var (ids, positions) = PromptInputs(width);
            int length = promptLength;
            for (int step = 0; step < options.MaxNewTokens; step++)
            {
                float[] logits;
                using (TensorScope.Begin())
                {
                    var maskTensor = Tensor.FromInt32(MaskColumns(width, length), rows, length);
                    logits = model.Forward(ids, maskTensor, positions, cache, lastTokenOnly: true).ToArray();
                }
                int vocab = logits.Length / rows;
                var next = new int[rows];
                for (int r = 0; r < rows; r++)
                {
                    if (stopped[r] is not null)
                    {
                        next[r] = padId;
                        continue;
                    }
                    next[r] = NextTokenSelector.Select(logits.AsSpan(r * vocab, vocab), options, rng, seen[r], order);
                    Accept(r, next[r], step);
                }
                if (stopped.All(s => s is not null)) return;
                for (int r = 0; r < rows; r++) mask[r * width + length] = 1;
                length++;
                using (TensorScope.Untracked())
                {
                    ids = Tensor.FromInt32(next, rows, 1);
                    positions = Tensor.FromInt32(nextPosition, rows, 1);
                }
                for (int r = 0; r < rows; r++) nextPosition[r]++;
            }
        }

        /// <summary>
        /// Left-padded prompt ids and transformers' positions (cumsum(mask) − 1, counting the soft prompt's n leading
        /// ones as PEFT's mask does; padding at 1).
        /// </summary>
        private (Tensor Ids, Tensor Positions) PromptInputs(int width)
        {
            var ids = new int[rows * promptLength];
            var positions = new int[rows * promptLength];
            for (int r = 0; r < rows; r++)
            {
                int pad = promptLength - prompts[r].Count;
                for (int i = 0; i < promptLength; i++)
                {
                    bool real = i >= pad;
                    ids[r * promptLength + i] = real ? prompts[r][i - pad] : padId;
                    mask[r * width + i] = real ? 1 : 0;
                    positions[r * promptLength + i] = real ? softPromptLength + i - pad : 1;
                }
                nextPosition[r] = softPromptLength + prompts[r].Count;
            }
            using (TensorScope.Untracked())
                return (Tensor.FromInt32(ids, rows, promptLength), Tensor.FromInt32(positions, rows, promptLength));
        }

        private int[] MaskColumns(int width, int length)
        {
            var m = new int[rows * length];
            for (int r = 0; r < rows; r++) Array.Copy(mask, r * width, m, r * length, length);
            return m;
        }

        private void Accept(int row, int token, int step)
        {
            generated[row].Add(token);
            seen[row].Add(token);
            if (eos.Contains(token)) stopped[row] = GenerationStopReason.EndOfSequence;
            else if (options.StopStrings.Count > 0 && ContainsStopString(generated[row])) stopped[row] = GenerationStopReason.StopString;
            else if (step + 1 == options.MaxNewTokens) stopped[row] = GenerationStopReason.MaxNewTokens;
        }

        private bool ContainsStopString(List<int> tokens)
        {
            string text = decode!(tokens);
            return options.StopStrings.Any(s => text.Contains(s, StringComparison.Ordinal));
        }
    }
}
