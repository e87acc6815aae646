using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Reft;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Reft;

/// <summary>
/// The residual-stream hook in every architecture's layer loop (tiny random checkpoints of Fixtures/reference/models):
/// block 0's output as block 1 sees it equals Φ(h) at the first and last real token of each row (formula in double)
/// and the unedited output elsewhere, bit for bit.
/// </summary>
[TestClass]
public sealed class ReftArchitectureTests
{
    [TestMethod]
    [DataRow("bert")]
    [DataRow("roberta")]
    [DataRow("distilbert")]
    [DataRow("gpt2")]
    [DataRow("gpt_neox")]
    [DataRow("llama_gqa")]
    [DataRow("qwen2")]
    public void Block0Output_IsEditedAtTheFirstAndLastRealToken_Only(string architecture)
    {
        var model = PretrainedModel.Load(TestPaths.Fixture("reference", "models", architecture));
        model.Eval();
        var ids = Tensor.FromInt32([5, 17, 12, 9, 13, 7, 21, 11, 3, 3], 2, 5);
        var mask = Tensor.FromInt32([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], 2, 5);
        var before = Hidden(model, ids, mask);

        PeftModel.Inject(model, new ReftConfig { Layers = [0], LowRankDimension = 2, Positions = "f1+l1", ShareWeights = true });
        model.Eval();
        var host = model.NamedModules().Select(m => m.Module).OfType<IResidualStreamHost>().Single();
        var (_, intervention) = ((ReftLayer)host.ResidualStreamHook!).Interventions("default").Single();
        var after = Hidden(model, ids, mask);

        int d = host.HiddenSize;
        var rot = ReftMath.Rotation(ReftMath.ToDouble(intervention.RotateLayer.Householder.ToArray()), 2, d);
        var w = ReftMath.ToDouble(intervention.LearnedSource.Weight.ToArray());
        var b = ReftMath.ToDouble(intervention.LearnedSource.Bias!.ToArray());
        var edited = new HashSet<int> { 0, 4, 5, 7 };
        for (int p = 0; p < 10; p++)
        {
            var h = before[(p * d)..((p + 1) * d)];
            var actual = after[(p * d)..((p + 1) * d)];
            if (!edited.Contains(p))
            {
                CollectionAssert.AreEqual(h, actual, $"{architecture}: position {p} must be untouched");
                continue;
            }
            var expected = ReftMath.Phi(true, rot, w, b, ReftMath.ToDouble(h), 2, d);
            for (int j = 0; j < d; j++) Assert.AreEqual(expected[j], actual[j], 2e-5 * Math.Max(1, Math.Abs(expected[j])), $"{architecture}: position {p} feature {j}");
        }
    }

    /// <summary>Block 0's output (hidden_states[1]) of the model's backbone, flattened.</summary>
    private static float[] Hidden(Module model, Tensor ids, Tensor mask)
    {
        var host = model.NamedModules().Select(m => m.Module).OfType<IResidualStreamHost>().First();
        var states = new List<Tensor>();
        using var noGrad = Autograd.NoGrad();
        if (host is DecoderModel decoder) decoder.Forward(ids, mask, hiddenStates: states);
        else ((EncoderModel)host).Forward(ids, mask, hiddenStates: states);
        return states[1].ToArray();
    }
}
