using Microsoft.ML.Peft.Adapters;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Models;
using static Microsoft.ML.Peft.Tests.Lora.LoraFixtures;

namespace Microsoft.ML.Peft.Tests.Adapters;

/// <summary>
/// The adapter and fusion layers against plain PyTorch (build/reference/adapters_reference.py): outputs and every
/// gradient of Σ y∘r, float32 on both sides (tolerance 1e-5 absolute + 1e-4 relative).
/// </summary>
[TestClass]
public sealed class PyTorchAdapterReferenceTests
{
    [TestMethod]
    [DataRow("silu")]
    [DataRow("gelu")]
    public void SerialAdapter_OutputAndGradients_MatchPyTorch(string activation)
    {
        using var fx = ReferenceFixture.Open("adapters/adapters.safetensors");
        string p = $"serial_{activation}.";
        var layer = new BottleneckAdapterLinear(new Linear(fx.Float(p + "base.weight"), fx.Float(p + "base.bias")), "proj");
        layer.AddAdapter("default", new BottleneckAdapterConfig { BottleneckSize = 3, Scaling = 1.5, NonLinearity = activation }, null, new Generator(1));
        layer.SetActiveAdapters(["default"], trainable: true);
        Linear down = layer.Down("default"), up = layer.Up("default");
        using (Autograd.NoGrad())
        {
            down.Weight.CopyFrom_(fx.Float(p + "down.weight"));
            down.Bias!.CopyFrom_(fx.Float(p + "down.bias"));
            up.Weight.CopyFrom_(fx.Float(p + "up.weight"));
            up.Bias!.CopyFrom_(fx.Float(p + "up.bias"));
        }
        var x = fx.Float(p + "x").RequiresGrad_();
        var y = layer.Forward(x);
        AssertClose(fx.Float(p + "y"), y, 1e-5, 1e-4, p + "y");
        y.Backward(fx.Float(p + "r"));
        AssertClose(fx.Float(p + "grad.x"), x.Grad!, 1e-5, 1e-4, p + "grad.x");
        AssertClose(fx.Float(p + "grad.down.weight"), down.Weight.Grad!, 1e-5, 1e-4, p + "grad.down.weight");
        AssertClose(fx.Float(p + "grad.down.bias"), down.Bias!.Grad!, 1e-5, 1e-4, p + "grad.down.bias");
        AssertClose(fx.Float(p + "grad.up.weight"), up.Weight.Grad!, 1e-5, 1e-4, p + "grad.up.weight");
        AssertClose(fx.Float(p + "grad.up.bias"), up.Bias!.Grad!, 1e-5, 1e-4, p + "grad.up.bias");
    }

    [TestMethod]
    public void Fusion_OutputWeightsAndGradients_MatchPyTorch()
    {
        using var fx = ReferenceFixture.Open("adapters/adapters.safetensors");
        var fusion = new AdapterFusion(5, ["a", "b", "c"], new Generator(1));
        using (Autograd.NoGrad())
        {
            fusion.Query.Weight.CopyFrom_(fx.Float("fusion.query.weight"));
            fusion.Query.Bias!.CopyFrom_(fx.Float("fusion.query.bias"));
            fusion.Key.Weight.CopyFrom_(fx.Float("fusion.key.weight"));
            fusion.Key.Bias!.CopyFrom_(fx.Float("fusion.key.bias"));
            fusion.Value.Weight.CopyFrom_(fx.Float("fusion.value.weight"));
        }
        var h = fx.Float("fusion.h").RequiresGrad_();
        var zAll = fx.Float("fusion.z");
        var z = Enumerable.Range(0, 3).Select(i => zAll.Select(0, i).Contiguous().Detach().RequiresGrad_()).ToArray();
        using (Autograd.NoGrad()) AssertClose(fx.Float("fusion.p"), fusion.Weights(h, z), 1e-6, 1e-5, "fusion.p");
        var output = fusion.Forward(h, z);
        AssertClose(fx.Float("fusion.out"), output, 1e-5, 1e-4, "fusion.out");
        output.Backward(fx.Float("fusion.r"));
        AssertClose(fx.Float("fusion.grad.h"), h.Grad!, 1e-5, 1e-4, "grad.h");
        var zGrad = fx.Float("fusion.grad.z");
        for (int i = 0; i < 3; i++) AssertClose(zGrad.Select(0, i).Contiguous(), z[i].Grad!, 1e-5, 1e-4, $"grad.z[{i}]");
        AssertClose(fx.Float("fusion.grad.query.weight"), fusion.Query.Weight.Grad!, 1e-5, 1e-4, "grad.query.weight");
        AssertClose(fx.Float("fusion.grad.query.bias"), fusion.Query.Bias!.Grad!, 1e-5, 1e-4, "grad.query.bias");
        AssertClose(fx.Float("fusion.grad.key.weight"), fusion.Key.Weight.Grad!, 1e-5, 1e-4, "grad.key.weight");
        AssertClose(fx.Float("fusion.grad.key.bias"), fusion.Key.Bias!.Grad!, 1e-5, 1e-4, "grad.key.bias");
        AssertClose(fx.Float("fusion.grad.value.weight"), fusion.Value.Weight.Grad!, 1e-5, 1e-4, "grad.value.weight");
    }
}
