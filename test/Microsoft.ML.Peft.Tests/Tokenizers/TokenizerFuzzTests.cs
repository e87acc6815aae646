using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.Tokenizers;

/// <summary>
/// Loads thousands of damaged tokenizer files. The only exception a loader may throw is
/// <see cref="TokenizerFormatException"/> (naming the source); a file that loads must then encode, batch and decode
/// without any exception. Mutations: deleted keys, values of the wrong type, huge and negative numbers, unknown and
/// unsupported component types, merges naming unknown tokens, truncation, flipped bytes and invalid UTF-8.
/// </summary>
[TestClass]
public sealed class TokenizerFuzzTests
{
    private const string Probe = "Hello, world! It's 2024: naïve café 日本 😀\t<s>[CLS]<|endoftext|>  end ";

    private static readonly string[] TypeNames =
        ["BPE", "WordPiece", "Unigram", "WordLevel", "ByteLevel", "Metaspace", "Sequence", "Split", "Replace", "Prepend", "Strip",
         "Fuse", "ByteFallback", "BertNormalizer", "BertPreTokenizer", "TemplateProcessing", "RobertaProcessing", "NFC", "", "Bogus"];

    [TestMethod]
    public void MutatedTokenizerJsonDocuments_OnlyThrowTokenizerFormatException()
    {
        var seeds = new List<byte[]>
        {
            File.ReadAllBytes(Path.Combine(TestPaths.Stories260K, "tokenizer.json")),
            SmallByteLevelJson("json"),
            SmallByteLevelJson("llama3"),
            SmallBertJson(),
        };
        foreach (var seed in seeds) Exercise(TokenizerLoader.FromTokenizerJson(new MemoryStream(seed), "seed.json"));

        var random = new Random(12345);
        var watch = Stopwatch.StartNew();
        int loaded = 0, rejected = 0;
        var trees = seeds.Select(s => JsonNode.Parse(s)!).ToArray();
        var candidates = trees.Select(t =>
        {
            var nodes = new List<JsonNode>();
            Collect(t, nodes, random);
            return nodes;
        }).ToArray();
        for (int n = 0; n < 10_000; n++)
        {
            int which = random.Next(seeds.Count);
            byte[] document = random.Next(4) == 0 ? MutateBytes(seeds[which], random) : MutateTree(trees[which], candidates[which], random);
            Tokenizer tokenizer;
            try
            {
                tokenizer = TokenizerLoader.FromTokenizerJson(new MemoryStream(document), $"fuzz-{n}.json");
            }
            catch (TokenizerFormatException e)
            {
                StringAssert.Contains(e.Message, $"fuzz-{n}.json");
                rejected++;
                continue;
            }
            catch (Exception e)
            {
                Assert.Fail($"document {n} threw {e.GetType().Name}: {e.Message}\n{Encoding.UTF8.GetString(document)[..Math.Min(2000, document.Length)]}");
                throw;
            }
            loaded++;
            Exercise(tokenizer);
        }
        Console.WriteLine($"10,000 mutated tokenizer.json: {loaded} loaded, {rejected} rejected in {watch.Elapsed.TotalSeconds:F1} s " +
            $"(process CPU so far {Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds:F1} s)");
        Assert.IsGreaterThan(1000, loaded, "mutations should not all be fatal");
        Assert.IsGreaterThan(1000, rejected, "mutations should often be fatal");
    }

    [TestMethod]
    public void MutatedSentencePieceModels_OnlyThrowTokenizerFormatException()
    {
        var seeds = new[]
        {
            File.ReadAllBytes(Path.Combine(TestPaths.Stories260K, "tokenizer.model")),
            File.ReadAllBytes(TokenizerFixtures.Path("spm_trained_options.model")),
        };
        var random = new Random(777);
        int loaded = 0;
        for (int n = 0; n < 2000; n++)
        {
            byte[] model = random.Next(2) == 0 ? MutateBytes(seeds[n % seeds.Length], random) : MutateModel(seeds[n % seeds.Length], random);
            try
            {
                var tokenizer = SentencePieceBpeTokenizer.Create(new MemoryStream(model));
                loaded++;
                Exercise(tokenizer);
            }
            catch (TokenizerFormatException)
            {
            }
        }
        Assert.IsGreaterThan(300, loaded);
    }

    /// <summary>
    /// Protobuf-aware edits of a tokenizer.model: a piece gets another type, score (NaN, infinities), text or is dropped
    /// or duplicated; or trainer_spec / normalizer_spec fields are overridden by appending a second copy of the message
    /// (protobuf merges it): byte_fallback, model_type, unk_surface, whitespace flags, a random precompiled_charsmap.
    /// </summary>
    private static byte[] MutateModel(byte[] seed, Random random)
    {
        var fields = new List<(int Field, byte[] Payload)>();
        int position = 0;
        while (position < seed.Length)
        {
            int key = (int)ReadVarint(seed, ref position);
            int length = (int)ReadVarint(seed, ref position);
            fields.Add((key >> 3, seed[position..(position + length)]));
            position += length;
        }
        var pieces = fields.Select((f, i) => (f, i)).Where(p => p.f.Field == 1).Select(p => p.i).ToList();
        int target = pieces[random.Next(pieces.Count)];
        float[] scores = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, 1e30f, -1e30f, (float)random.NextDouble()];
        byte[][] texts = ["<0xZZ>"u8.ToArray(), "<0x41>"u8.ToArray(), [], "▁▁"u8.ToArray(), [0xFF, 0xFE], "<s>"u8.ToArray(), "a"u8.ToArray()];
        switch (random.Next(8))
        {
            case 0: fields[target] = (1, [.. fields[target].Payload, .. Varint(3 << 3), .. Varint((ulong)random.Next(0, 9))]); break;
            case 1: fields[target] = (1, [.. fields[target].Payload, 2 << 3 | 5, .. BitConverter.GetBytes(scores[random.Next(scores.Length)])]); break;
            case 2: fields[target] = (1, [.. fields[target].Payload, .. LengthDelimited(1, texts[random.Next(texts.Length)])]); break;
            case 3: fields.RemoveAt(target); break;
            case 4: fields.Add(fields[target]); break;
            case 5:
                byte[][] trainer = [[.. Varint(35 << 3), (byte)random.Next(2)], [.. Varint(3 << 3), (byte)random.Next(6)],
                    LengthDelimited(44, texts[random.Next(texts.Length)])];
                fields.Add((2, trainer[random.Next(trainer.Length)]));
                break;
            case 6:
                fields.Add((3, [(byte)((random.Next(3, 6) << 3) | 0), (byte)random.Next(2)]));
                break;
            default:
                var blob = new byte[random.Next(0, 64)];
                random.NextBytes(blob);
                if (blob.Length >= 4 && random.Next(2) == 0) BitConverter.GetBytes((uint)(random.Next(0, blob.Length / 4) * 4)).CopyTo(blob, 0);
                fields.Add((3, LengthDelimited(2, blob)));
                break;
        }
        return [.. fields.SelectMany(f => LengthDelimited(f.Field, f.Payload))];
    }

    private static ulong ReadVarint(byte[] data, ref int position)
    {
        ulong value = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = data[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
    }

    private static byte[] Varint(ulong value)
    {
        var bytes = new List<byte>();
        do
        {
            byte b = (byte)(value & 0x7F);
            value >>= 7;
            bytes.Add(value == 0 ? b : (byte)(b | 0x80));
        }
        while (value != 0);
        return [.. bytes];
    }

    private static byte[] LengthDelimited(int field, byte[] payload) => [.. Varint((ulong)(field << 3 | 2)), .. Varint((ulong)payload.Length), .. payload];

    [TestMethod]
    public void BadVocabAndMergesFiles_OnlyThrowTokenizerFormatException()
    {
        byte[] vocabJson = File.ReadAllBytes(TokenizerFixtures.Path("bytelevel", "gpt2", "vocab.json"));
        byte[] mergesTxt = File.ReadAllBytes(TokenizerFixtures.Path("bytelevel", "gpt2", "merges.txt"));
        byte[] vocabTxt = Encoding.UTF8.GetBytes("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n##s\n,\n!\n");
        var random = new Random(99);
        for (int n = 0; n < 2000; n++)
        {
            try
            {
                Exercise(WordPieceTokenizer.Create(new MemoryStream(MutateBytes(vocabTxt, random))));
            }
            catch (TokenizerFormatException)
            {
            }
            try
            {
                bool damageVocab = random.Next(2) == 0;
                var tokenizer = ByteLevelBpeTokenizer.Create(
                    new MemoryStream(damageVocab ? MutateBytes(vocabJson, random) : vocabJson),
                    new MemoryStream(damageVocab ? mergesTxt : MutateBytes(mergesTxt, random)));
                Exercise(tokenizer);
            }
            catch (TokenizerFormatException)
            {
            }
        }
        var e = Assert.ThrowsExactly<TokenizerFormatException>(() =>
            ByteLevelBpeTokenizer.Create(new MemoryStream(vocabJson), new MemoryStream("#version: 0.2\nĠ zzz\n"u8.ToArray())));
        StringAssert.Contains(e.Message, "zzz");
        StringAssert.Contains(e.Message, "merges");
    }

    /// <summary>Everything a loaded tokenizer offers must work on any input.</summary>
    private static void Exercise(Tokenizer tokenizer)
    {
        var ids = tokenizer.EncodeToIds(Probe);
        tokenizer.EncodeToTokens(Probe, out _);
        tokenizer.Decode(ids);
        tokenizer.Decode(ids, skipSpecialTokens: true);
        var all = Enumerable.Range(0, Math.Min(tokenizer.VocabularySize, 600)).Where(i => tokenizer.IdToToken(i) is not null).ToArray();
        tokenizer.Decode(all);
        tokenizer.EncodeBatch([Probe, "x"], [Probe, ""], new EncodeOptions { MaxLength = 32, PaddingTokenId = 0 });
    }

    /// <summary>A byte-level fixture with its vocabulary cut to the 256 byte characters, 40 merges and the specials.</summary>
    private static byte[] SmallByteLevelJson(string folder)
    {
        var root = JsonNode.Parse(File.ReadAllBytes(TokenizerFixtures.Path("bytelevel", folder, "tokenizer.json")))!;
        var model = root["model"]!;
        var vocab = model["vocab"]!.AsObject();
        var specials = root["added_tokens"]!.AsArray().Select(t => t!["content"]!.GetValue<string>()).ToHashSet();
        var merges = model["merges"]!.AsArray().Take(40).Select(m => m!.DeepClone()).ToList();
        var keep = new HashSet<string>(vocab.Where(p => p.Value!.GetValue<int>() < 256).Select(p => p.Key));
        foreach (var merge in merges)
        {
            string[] pair = merge is JsonArray a ? [a[0]!.GetValue<string>(), a[1]!.GetValue<string>()] : merge!.GetValue<string>().Split(' ');
            keep.Add(pair[0] + pair[1]);
        }
        foreach (var name in vocab.Select(p => p.Key).Where(k => !keep.Contains(k) && !specials.Contains(k)).ToList()) vocab.Remove(name);
        model["merges"] = new JsonArray([.. merges]);
        return Encoding.UTF8.GetBytes(root.ToJsonString());
    }

    /// <summary>bert-base-uncased's tokenizer.json with the vocabulary cut to the special tokens and a few words.</summary>
    private static byte[] SmallBertJson()
    {
        var root = JsonNode.Parse(File.ReadAllBytes(Path.Combine(TestPaths.BertTokenizer, "tokenizer.json")))!;
        var vocab = new JsonObject();
        string[] keep = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", ",", "!", "##s", "it", "'", "s", "na", "##ive", "cafe"];
        foreach (var (token, index) in keep.Select((t, i) => (t, i))) vocab[token] = index;
        root["model"]!["vocab"] = vocab;
        var added = root["added_tokens"]!.AsArray();
        foreach (var token in added) token!["id"] = Array.IndexOf(keep, token["content"]!.GetValue<string>());
        foreach (var name in new[] { "[CLS]", "[SEP]" })
        {
            root["post_processor"]!["special_tokens"]![name]!["ids"] = new JsonArray(Array.IndexOf(keep, name));
        }
        return Encoding.UTF8.GetBytes(root.ToJsonString());
    }

    private static byte[] MutateBytes(byte[] seed, Random random)
    {
        var bytes = (byte[])seed.Clone();
        switch (random.Next(5))
        {
            case 0:
                return bytes[..random.Next(bytes.Length)];
            case 1:
                for (int i = random.Next(1, 8); i > 0; i--) bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                return bytes;
            case 2:
                int at = random.Next(bytes.Length);
                byte[][] invalid = [[0xFF], [0xC0, 0x80], [0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80]];
                return [.. bytes[..at], .. invalid[random.Next(invalid.Length)], .. bytes[at..]];
            case 3:
                int cut = random.Next(bytes.Length), length = random.Next(1, 64);
                return [.. bytes[..cut], .. bytes[Math.Min(bytes.Length, cut + length)..]];
            default:
                int insertAt = random.Next(bytes.Length);
                return [.. bytes[..insertAt], .. Encoding.ASCII.GetBytes(new string('[', 200)), .. bytes[insertAt..]];
        }
    }

    /// <summary>
    /// Applies one to three edits (delete, or replace by a value of another type, a huge or negative number, a component
    /// type name, a merge of unknown tokens) to the tree in place, serialises it, and undoes the edits.
    /// </summary>
    private static byte[] MutateTree(JsonNode root, List<JsonNode> candidates, Random random)
    {
        var undo = new Stack<Action>();
        int mutations = random.Next(1, 4);
        for (int m = 0; m < mutations; m++)
        {
            var target = candidates[random.Next(candidates.Count)];
            if (target.Parent is not { } parent) continue;   // inside a subtree an earlier edit removed
            JsonNode? replacement = random.Next(9) switch
            {
                0 => null,
                1 => JsonValue.Create(random.Next(3) switch { 0 => 1e300, 1 => -1.0, _ => 2147483648.0 }),
                2 => JsonValue.Create("Ġzz qq"),
                3 => new JsonArray(),
                4 => new JsonObject(),
                5 => JsonValue.Create(random.Next(2) == 0),
                6 => JsonValue.Create(TypeNames[random.Next(TypeNames.Length)]),
                7 => JsonValue.Create(random.Next(-5, 100_000)),
                _ => JsonValue.Create("x"),
            };
            bool delete = random.Next(4) == 0;
            switch (parent)
            {
                case JsonObject obj:
                    string key = target.GetPropertyName();
                    int position = obj.IndexOf(key);
                    obj.Remove(key);
                    if (!delete) obj.Insert(position, key, replacement);
                    undo.Push(() =>
                    {
                        obj.Remove(key);
                        obj.Insert(position, key, target);
                    });
                    break;
                case JsonArray array:
                    int index = target.GetElementIndex();
                    array.RemoveAt(index);
                    if (!delete) array.Insert(index, replacement);
                    undo.Push(() =>
                    {
                        if (!delete) array.RemoveAt(index);
                        array.Insert(index, target);
                    });
                    break;
            }
        }
        byte[] bytes = Encoding.UTF8.GetBytes(root.ToJsonString());
        while (undo.Count > 0) undo.Pop()();
        return bytes;
    }

    /// <summary>Collects non-root nodes, sampling inside large containers (vocabularies) to keep this fast.</summary>
    private static void Collect(JsonNode node, List<JsonNode> nodes, Random random)
    {
        if (node.Parent is not null) nodes.Add(node);
        IEnumerable<JsonNode?> children = node switch
        {
            JsonObject obj => obj.Select(p => p.Value),
            JsonArray array => array,
            _ => [],
        };
        var list = children.Where(c => c is not null).ToList();
        if (list.Count > 20) list = [.. Enumerable.Range(0, 5).Select(_ => list[random.Next(list.Count)])];
        foreach (var child in list) Collect(child!, nodes, random);
    }
}
