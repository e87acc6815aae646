namespace Microsoft.ML.Peft.Tests.MLNet;

/// <summary>
/// <see cref="TextClassificationTrainerOptions.GradientCheckpointing"/> on a base without a decoder layer loop: a clear
/// refusal naming the option, before any training. (Decoders: <c>QLoraEstimatorTests</c> and
/// <c>DecoderCheckpointingTests</c> show unchanged gradients and scores.)
/// </summary>
[TestClass]
public sealed class GradientCheckpointingOptionTests
{
    [TestMethod]
    public void EncoderBase_RefusesCheckpointing_NamingTheOption()
    {
        string folder = EncoderPipelineTests.ModelFolder("bert");
        try
        {
            var ml = new MLContext();
            var options = new LoraTextClassificationTrainer.Options { BaseModel = folder, MaxEpochs = 1, BatchSize = 8, MaxSequenceLength = 16, GradientCheckpointing = true };
            var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 8).Select(i => new { Sentence1 = i % 2 == 0 ? "good fun" : "dull plot", Label = i % 2 == 0 }).ToList());
            var e = Assert.ThrowsExactly<NotSupportedException>(() => ml.BinaryClassification.Trainers.LoraTextClassification(options).Fit(data));
            StringAssert.Contains(e.Message, "GradientCheckpointing");
            StringAssert.Contains(e.Message, folder);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
