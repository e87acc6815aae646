using System.Text.Json;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.QLora;

/// <summary>
/// Perplexity of stories260K with its linear layers in float32, NF4, FP4, Int4 and int8 on four short TinyStories-style
/// texts, against build/reference/quant_perplexity_reference.py (plain PyTorch Llama, independent quantizer): NF4
/// must be the best 4-bit type (QLoRA paper, Table 2).
/// </summary>
[TestClass]
public sealed class QuantizationQualityTests
{
    private static readonly string FixturePath = TestPaths.Fixture("reference", "quant", "perplexity_stories260k.json");

    [TestMethod]
    public void Perplexity_PerBaseWeightFormat_MatchesPyTorch_AndNf4IsTheBest4BitType()
    {
        var (texts, sequences, expected) = ReadFixture();
        var tokenizer = TokenizerLoader.FromFolder(TestPaths.Stories260K);
        for (int i = 0; i < texts.Length; i++)
            CollectionAssert.AreEqual(sequences[i], WithBos(tokenizer, texts[i]), $"text {i} tokenizes as SentencePiece does");

        var perplexity = new Dictionary<BaseWeightFormat, double>();
        foreach (var format in Enum.GetValues<BaseWeightFormat>())
        {
            var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
            int converted = QuantizationQuality.ApplyBaseWeightFormat(model, format).Count;
            Assert.AreEqual(format == BaseWeightFormat.Float32 ? 0 : 35, converted, format.ToString());
            perplexity[format] = QuantizationQuality.Perplexity(model, sequences);
            // Same rounded weights (bit-exact quantizers), float32 logits summed in another order: agree to ~1e-6.
            Assert.AreEqual(expected[format], perplexity[format], 2e-5 * expected[format], format.ToString());
        }

        // Reference values: fp32 3.8457, NF4 4.1518, Int4 4.2077, FP4 4.7334, int8 3.8434.
        double nf4 = perplexity[BaseWeightFormat.NF4];
        Assert.IsTrue(nf4 < perplexity[BaseWeightFormat.Int4], $"NF4 {nf4} vs Int4 {perplexity[BaseWeightFormat.Int4]}");
        Assert.IsTrue(nf4 < perplexity[BaseWeightFormat.FP4], $"NF4 {nf4} vs FP4 {perplexity[BaseWeightFormat.FP4]}");
        Assert.IsTrue(perplexity[BaseWeightFormat.Int8] < nf4, "8 bits lose less than 4");
    }

    [TestMethod]
    public void Perplexity_AgreesWithTheEnginesLanguageModelingLoss()
    {
        var (_, sequences, _) = ReadFixture();
        int[] ids = sequences[0];
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
        double ours = QuantizationQuality.Perplexity(model, [ids]);
        double engine;
        using (Autograd.NoGrad())
        using (TensorScope.Begin())
        {
            var input = Tensor.FromInt32(ids, 1, ids.Length);
            engine = Math.Exp(CausalLanguageModel.LanguageModelingLoss(model.Forward(input), input).Item());
        }
        Assert.AreEqual(engine, ours, engine * 1e-5);
    }

    [TestMethod]
    public void Perplexity_RejectsTokensOutsideTheVocabulary()
    {
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
        var e = Assert.ThrowsExactly<ArgumentException>(() => QuantizationQuality.Perplexity(model, [[1, 5, 512]]));
        StringAssert.Contains(e.Message, "sequence 0, position 2: token id 512");
    }

    private static (string[] Texts, int[][] Sequences, Dictionary<BaseWeightFormat, double> Perplexity) ReadFixture()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(FixturePath));
        var root = json.RootElement;
        string[] texts = [.. root.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!)];
        int[][] sequences = [.. root.GetProperty("token_ids").EnumerateArray().Select(s => s.EnumerateArray().Select(v => v.GetInt32()).ToArray())];
        var p = root.GetProperty("perplexity");
        var expected = new Dictionary<BaseWeightFormat, double>
        {
            [BaseWeightFormat.Float32] = p.GetProperty("float32").GetDouble(),
            [BaseWeightFormat.NF4] = p.GetProperty("nf4").GetDouble(),
            [BaseWeightFormat.FP4] = p.GetProperty("fp4").GetDouble(),
            [BaseWeightFormat.Int4] = p.GetProperty("int4").GetDouble(),
            [BaseWeightFormat.Int8] = p.GetProperty("int8").GetDouble(),
        };
        return (texts, sequences, expected);
    }

    /// <summary>BOS (id 1) then the SentencePiece ids: how every training story started.</summary>
    private static int[] WithBos(Tokenizer tokenizer, string text) => [1, .. tokenizer.EncodeToIds(text)];
}
