using Microsoft.ML.Peft.Reft;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Models;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Reft;

/// <summary>
/// LoReFT and DiReFT on the tiny random Llama against PyTorch (build/reference/reft_reference.py →
/// Fixtures/reference/reft): the last hidden state and the gradients of every V, W, b for the loss
/// Σ last_hidden_state ∘ P ∘ mask. Rows of 5, 3 and 1 real tokens (right padding; the 1-token row is not edited).
/// </summary>
[TestClass]
public sealed class ReftReferenceTests
{
    [TestMethod]
    [DataRow("loreft")]
    [DataRow("direft")]
    public void OutputsAndGradients_MatchPyTorch(string caseName)
    {
        using var fx = ReferenceFixture.Open("reft/reft.safetensors");
        var config = caseName == "loreft"
            ? new ReftConfig { Layers = [0, 1], LowRankDimension = 3, Positions = "f2+l1" }
            : new ReftConfig { Layers = [1], LowRankDimension = 2, Positions = "f1+l1", ShareWeights = true, InterventionType = ReftInterventionType.Direft };
        var model = ReftModelTests.Llama();
        model.Eval();
        var peft = PeftModel.Inject(model, config);
        var layer = (ReftLayer)model.GetModule("model.interventions");
        var interventions = layer.Interventions("default");
        Assert.AreEqual(caseName == "loreft" ? 4 : 1, interventions.Count);
        foreach (var (name, intervention) in interventions)
        {
            fx.Floats($"{caseName}.{name}.rotate_layer.householder").CopyTo(intervention.RotateLayer.Householder.AsSpan<float>());
            fx.Floats($"{caseName}.{name}.learned_source.weight").CopyTo(intervention.LearnedSource.Weight.AsSpan<float>());
            fx.Floats($"{caseName}.{name}.learned_source.bias").CopyTo(intervention.LearnedSource.Bias!.AsSpan<float>());
            Close.Assert(fx.Float($"{caseName}.{name}.R"), intervention.RotateLayer.Weight(), $"{caseName} {name} R", atol: 1e-6, rtol: 0);
        }

        var mask = fx.Int("attention_mask");
        var hidden = model.Decoder.Forward(fx.Int("input_ids"), mask);
        var maskValues = mask.AsReadOnlySpan<int>().ToArray();
        Close.Assert(fx.Float($"{caseName}.last_hidden_state"), hidden, $"{caseName} last_hidden_state", atol: 2e-5, rtol: 1e-4,
            where: i => maskValues[i / 32] == 1);

        var weights = fx.Float("loss.projection").Mul(Tensor.From(maskValues.Select(v => (float)v).ToArray(), 3, 5, 1));
        var loss = hidden.Mul(weights).Sum();
        Assert.AreEqual(fx.Floats($"{caseName}.loss")[0], loss.ToArray()[0], 1e-4 * Math.Max(1, Math.Abs(fx.Floats($"{caseName}.loss")[0])), "loss");
        loss.Backward();
        foreach (var (name, intervention) in interventions)
        {
            Close.Assert(fx.Float($"{caseName}.grad.{name}.rotate_layer.householder"), intervention.RotateLayer.Householder.Grad!, $"{caseName} dV {name}", atol: 1e-4, rtol: 1e-3);
            Close.Assert(fx.Float($"{caseName}.grad.{name}.learned_source.weight"), intervention.LearnedSource.Weight.Grad!, $"{caseName} dW {name}", atol: 1e-4, rtol: 1e-3);
            Close.Assert(fx.Float($"{caseName}.grad.{name}.learned_source.bias"), intervention.LearnedSource.Bias!.Grad!, $"{caseName} db {name}", atol: 1e-4, rtol: 1e-3);
        }
        Assert.IsTrue(peft.TrainableParameters().All(p => p.Parameter.Grad is not null), "every trainable tensor got a gradient");
    }
}
