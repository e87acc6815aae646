using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.QLora;

/// <summary>
/// Perplexity of stories260K with its linear layers in float32, NF4, FP4, Int4 and int8 on a fixed TinyStories-style
/// sample: NF4 must be the best 4-bit type (QLoRA paper, Table 2).
/// </summary>
[TestClass]
public sealed class QuantizationQualityTests
{
    /// <summary>Short children's stories in the style of TinyStories (written for this test, not from the training set).</summary>
    private static readonly string[] Sample =
    [
        "Once upon a time, there was a little girl named Lily. She loved to play in the park with her red ball. One day, the ball rolled into the pond. Lily was sad, but a kind duck pushed the ball back to her. Lily smiled and said thank you to the duck.",
        "Tom had a big dog named Max. Max liked to run and jump in the garden. One morning, Max found a small bird under a tree. Tom and Max helped the bird go back to its nest. The bird sang a happy song for them.",
        "Sue wanted to bake a cake for her mom. She got flour, eggs and milk from the kitchen. Her dad helped her mix everything in a big bowl. When the cake was ready, her mom hugged her. It was the best day ever.",
        "Ben was a little boy who was afraid of the dark. Every night, his mom left a small light on in his room. One night, Ben saw the moon shine through the window. He was not scared anymore, and he fell asleep with a smile.",
    ];

    [TestMethod]
    public void Nf4_HasLowerPerplexity_ThanFp4AndInt4()
    {
        var tokenizer = TokenizerLoader.FromFolder(TestPaths.Stories260K);
        var sequences = Sample.Select(s => WithBos(tokenizer, s)).ToList();

        var perplexity = new Dictionary<BaseWeightFormat, double>();
        foreach (var format in Enum.GetValues<BaseWeightFormat>())
        {
            var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
            int converted = QuantizationQuality.ApplyBaseWeightFormat(model, format).Count;
            Assert.AreEqual(format == BaseWeightFormat.Float32 ? 0 : 35, converted, format.ToString());
            perplexity[format] = QuantizationQuality.Perplexity(model, sequences);
            Console.WriteLine($"{format}: {perplexity[format]:F4}");
        }

        double nf4 = perplexity[BaseWeightFormat.NF4];
        Assert.IsTrue(nf4 < perplexity[BaseWeightFormat.FP4], $"NF4 {nf4} vs FP4 {perplexity[BaseWeightFormat.FP4]}");
        Assert.IsTrue(nf4 < perplexity[BaseWeightFormat.Int4], $"NF4 {nf4} vs Int4 {perplexity[BaseWeightFormat.Int4]}");
        Assert.IsTrue(perplexity[BaseWeightFormat.Int8] < nf4, "8 bits lose less than 4");
        Assert.IsTrue(Math.Abs(perplexity[BaseWeightFormat.Int8] / perplexity[BaseWeightFormat.Float32] - 1) < 0.01, "int8 is within 1% of fp32");
    }

    [TestMethod]
    public void Perplexity_AgreesWithTheEnginesLanguageModelingLoss()
    {
        var tokenizer = TokenizerLoader.FromFolder(TestPaths.Stories260K);
        var ids = WithBos(tokenizer, Sample[0]);
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

    /// <summary>BOS (id 1) then the SentencePiece ids: what the model saw at the start of each training story.</summary>
    private static int[] WithBos(Tokenizer tokenizer, string text) => [1, .. tokenizer.EncodeToIds(text)];
}
