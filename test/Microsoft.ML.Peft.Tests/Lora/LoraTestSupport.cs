using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Lora;

/// <summary>
/// The tiny model of build/reference/lora_reference.py, built from engine modules with the same dotted names:
/// layers.{i}.attn.{q_proj, v_proj}, layers.{i}.mlp.{fc1, fc2}, classifier (and optionally lm_head on top).
/// Forward per layer: h = h + q_proj(h) ⊙ v_proj(h); h = h + fc2(relu(fc1(h))); logits = classifier(h).
/// </summary>
internal sealed class TinyModel : Module
{
    public TinyModel(Generator g, int d = 8, int hidden = 12, int classes = 3, int layerCount = 2, bool lmHead = false)
    {
        Layers = RegisterModule("layers", new ModuleList<Block>(Enumerable.Range(0, layerCount).Select(_ => new Block(g, d, hidden))));
        Classifier = RegisterModule<LinearLayer>("classifier", new Linear(d, classes, g));
        if (lmHead) LmHead = RegisterModule<LinearLayer>("lm_head", new Linear(classes, 5, g, hasBias: false));
    }

    public ModuleSlot<ModuleList<Block>> Layers { get; }

    public ModuleSlot<LinearLayer> Classifier { get; }

    public ModuleSlot<LinearLayer>? LmHead { get; }

    /// <summary>A model whose parameters are the named tensors of a fixture (every parameter must be present).</summary>
    public static TinyModel FromState(IReadOnlyDictionary<string, Tensor> state)
    {
        var model = new TinyModel(new Generator(0));
        var own = model.StateDict().Keys.ToHashSet();
        model.LoadStateDict(state.Where(kv => own.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value), copy: true);
        return model;
    }

    public Tensor Forward(Tensor x)
    {
        var h = x;
        for (int i = 0; i < Layers.Module.Count; i++) h = Layers.Module[i].Forward(h);
        var logits = Classifier.Module.Forward(h);
        return LmHead is null ? logits : LmHead.Module.Forward(logits);
    }

    internal sealed class Block : Module
    {
        public Block(Generator g, int d, int hidden)
        {
            Attn = RegisterModule("attn", new Attention(g, d));
            Mlp = RegisterModule("mlp", new FeedForward(g, d, hidden));
        }

        public ModuleSlot<Attention> Attn { get; }

        public ModuleSlot<FeedForward> Mlp { get; }

        public Tensor Forward(Tensor x)
        {
            var a = Attn.Module;
            x = x.Add(a.QProj.Module.Forward(x).Mul(a.VProj.Module.Forward(x)));
            var m = Mlp.Module;
            return x.Add(m.Fc2.Module.Forward(m.Fc1.Module.Forward(x).Relu()));
        }
    }

    internal sealed class Attention : Module
    {
        public Attention(Generator g, int d)
        {
            QProj = RegisterModule<LinearLayer>("q_proj", new Linear(d, d, g));
            VProj = RegisterModule<LinearLayer>("v_proj", new Linear(d, d, g, hasBias: false));
        }

        public ModuleSlot<LinearLayer> QProj { get; }

        public ModuleSlot<LinearLayer> VProj { get; }
    }

    internal sealed class FeedForward : Module
    {
        public FeedForward(Generator g, int d, int hidden)
        {
            Fc1 = RegisterModule<LinearLayer>("fc1", new Linear(d, hidden, g));
            Fc2 = RegisterModule<LinearLayer>("fc2", new Linear(hidden, d, g));
        }

        public ModuleSlot<LinearLayer> Fc1 { get; }

        public ModuleSlot<LinearLayer> Fc2 { get; }
    }
}

/// <summary>Fixture access and comparisons for the LoRA tests.</summary>
internal static class LoraFixtures
{
    public static string Folder => TestPaths.Fixture("lora");

    /// <summary>Every tensor of a fixture file as a float32 engine tensor (persistent, outside any scope).</summary>
    public static Dictionary<string, Tensor> Load(string fileName)
    {
        using var file = SafeTensorsFile.Open(Path.Combine(Folder, fileName));
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var view in file.Tensors) result[view.Name] = Tensor.From(view.ToFloat32Array(), [.. view.Shape]);
        return result;
    }

    /// <summary>Asserts |expected − actual| ≤ atol + rtol·|expected| elementwise, reporting the worst element.</summary>
    public static void AssertClose(Tensor expected, Tensor actual, double atol, double rtol = 0, string what = "")
    {
        CollectionAssert.AreEqual(expected.ShapeArray(), actual.ShapeArray(), $"{what}: shape");
        var e = expected.ToArray();
        var a = actual.ToArray();
        double worst = 0;
        int at = -1;
        for (int i = 0; i < e.Length; i++)
        {
            double excess = Math.Abs(e[i] - a[i]) - (atol + rtol * Math.Abs(e[i]));
            if (excess > worst)
            {
                worst = excess;
                at = i;
            }
            if (!float.IsFinite(a[i])) Assert.Fail($"{what}[{i}] is {a[i]}");
        }
        if (at >= 0) Assert.Fail($"{what}[{at}]: expected {e[at]:G9}, actual {a[at]:G9} (|diff| {Math.Abs(e[at] - a[at]):G3} > {atol} + {rtol}·|expected|)");
    }

    /// <summary>Max |a − b|.</summary>
    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        var x = a.ToArray();
        var y = b.ToArray();
        Assert.AreEqual(x.Length, y.Length);
        double max = 0;
        for (int i = 0; i < x.Length; i++) max = Math.Max(max, Math.Abs((double)x[i] - y[i]));
        return max;
    }

    /// <summary>Asserts bitwise equality of two float tensors.</summary>
    public static void AssertBitIdentical(Tensor expected, Tensor actual, string what = "")
    {
        CollectionAssert.AreEqual(expected.ShapeArray(), actual.ShapeArray(), $"{what}: shape");
        var e = expected.ToArray();
        var a = actual.ToArray();
        for (int i = 0; i < e.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(e[i]) != BitConverter.SingleToInt32Bits(a[i]))
                Assert.Fail($"{what}[{i}]: expected {e[i]:G9}, actual {a[i]:G9} (not bit-identical)");
        }
    }

    /// <summary>A fresh random input [2, 5, 8] for the tiny model.</summary>
    public static Tensor Input(ulong seed = 5) => Tensor.Randn(new Generator(seed), 2, 5, 8);
}
