using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Tensors;

namespace Microsoft.ML.Peft.Tests.NN;

[TestClass]
public sealed class ModuleTests
{
    /// <summary>A miniature BERT-shaped tree: encoder.layer.{i}.attention.self.query, LayerNorm, dropout.</summary>
    private sealed class SelfAttention : Module
    {
        public SelfAttention(Generator g)
        {
            Query = RegisterModule<LinearLayer>("query", new Linear(4, 4, g));
            Value = RegisterModule<LinearLayer>("value", new Linear(4, 4, g, hasBias: false));
        }

        public ModuleSlot<LinearLayer> Query { get; }

        public ModuleSlot<LinearLayer> Value { get; }

        public Tensor Forward(Tensor x) => Query.Module.Forward(x).Add(Value.Module.Forward(x));
    }

    private sealed class Layer : Module
    {
        public Layer(Generator g)
        {
            Attention = RegisterModule("attention", new SelfAttention(g));
            Norm = RegisterModule("LayerNorm", new LayerNorm(4, 1e-12f));
            Drop = RegisterModule("dropout", new Dropout(0.5f, g));
        }

        public ModuleSlot<SelfAttention> Attention { get; }

        public ModuleSlot<LayerNorm> Norm { get; }

        public ModuleSlot<Dropout> Drop { get; }

        public Tensor Forward(Tensor x) => Norm.Module.Forward(Drop.Module.Forward(Attention.Module.Forward(x)).Add(x));
    }

    private sealed class Encoder : Module
    {
        public Encoder(Generator g)
        {
            Embeddings = RegisterModule("embeddings", new Embedding(10, 4, g, paddingIndex: 0));
            Layers = RegisterModule("layer", new ModuleList<Layer>([new Layer(g), new Layer(g)]));
        }

        public ModuleSlot<Embedding> Embeddings { get; }

        public ModuleSlot<ModuleList<Layer>> Layers { get; }

        public Tensor Forward(Tensor ids)
        {
            var h = Embeddings.Module.Forward(ids);
            for (int i = 0; i < Layers.Module.Count; i++) h = Layers.Module[i].Forward(h);
            return h;
        }
    }

    /// <summary>A wrapper that adds a constant to its base layer (stands in for a LoRA wrapper).</summary>
    private sealed class ShiftedLinear : LinearLayer
    {
        public ShiftedLinear(LinearLayer baseLayer) => Base = RegisterModule("base_layer", baseLayer);

        public ModuleSlot<LinearLayer> Base { get; }

        public override int InFeatures => Base.Module.InFeatures;

        public override int OutFeatures => Base.Module.OutFeatures;

        public override Tensor Forward(Tensor input) => Base.Module.Forward(input).Add(100f);
    }

    [TestMethod]
    public void NamedParameters_UseDottedHuggingFaceStyleNames()
    {
        var model = new Encoder(new Generator(1));
        var names = model.NamedParameters().Select(p => p.Name).ToArray();
        CollectionAssert.AreEqual(new[]
        {
            "embeddings.weight",
            "layer.0.attention.query.weight", "layer.0.attention.query.bias", "layer.0.attention.value.weight",
            "layer.0.LayerNorm.weight", "layer.0.LayerNorm.bias",
            "layer.1.attention.query.weight", "layer.1.attention.query.bias", "layer.1.attention.value.weight",
            "layer.1.LayerNorm.weight", "layer.1.LayerNorm.bias",
        }, names);
        var modules = model.NamedModules().Select(m => m.Name).ToArray();
        CollectionAssert.Contains(modules, "layer.1.attention.value");
        CollectionAssert.Contains(modules, "layer.0.dropout");
        Assert.AreEqual("", modules[0]);
        Assert.IsInstanceOfType<Linear>(model.GetModule("layer.1.attention.query"));
        Assert.AreSame(model.GetModule("layer.0.LayerNorm"), model.Layers.Module[0].Norm.Module);
        Assert.AreEqual(10 * 4 + 2 * (16 + 4 + 16 + 4 + 4), model.Parameters().Sum(p => p.Count));
    }

    [TestMethod]
    public void ReplaceModule_SwapsTheSlotSoForwardUsesTheWrapper()
    {
        var model = new Encoder(new Generator(2));
        model.Eval();
        var ids = Tensor.FromInt32([1, 2, 3], 1, 3);
        var attention = model.Layers.Module[0].Attention.Module;
        var x = Tensor.Randn(new Generator(3), 3, 4);
        var before = attention.Forward(x).ToArray();
        var original = (LinearLayer)model.GetModule("layer.0.attention.query");
        var old = model.ReplaceModule("layer.0.attention.query", new ShiftedLinear(original));
        Assert.AreSame(original, old);
        var after = attention.Forward(x).ToArray();
        for (int i = 0; i < before.Length; i++) Assert.AreEqual(before[i] + 100f, after[i], 1e-4);
        Assert.IsTrue(model.NamedParameters().Any(p => p.Name == "layer.0.attention.query.base_layer.weight"));
        var ex = Assert.ThrowsExactly<ArgumentException>(() => model.ReplaceModule("layer.0.LayerNorm", new Linear(4, 4, new Generator(4))));
        StringAssert.Contains(ex.Message, "LayerNorm");
        Assert.ThrowsExactly<KeyNotFoundException>(() => model.ReplaceModule("layer.7.attention", new Linear(4, 4, new Generator(4))));
        _ = model.Forward(ids);
    }

    [TestMethod]
    public void FreezeSubtree_TrainableOnlyAndNoGradients()
    {
        var model = new Encoder(new Generator(5));
        model.SetRequiresGrad(false);
        model.GetModule("layer.1.attention").SetRequiresGrad(true);
        var trainable = model.Parameters(trainableOnly: true).ToList();
        Assert.AreEqual(3, trainable.Count);
        var loss = model.Forward(Tensor.FromInt32([1, 2], 1, 2)).Sum();
        loss.Backward();
        Assert.IsNull(model.GetParameter("embeddings.weight").Grad);
        Assert.IsNull(model.GetParameter("layer.0.attention.query.weight").Grad);
        Assert.IsNotNull(model.GetParameter("layer.1.attention.value.weight").Grad);
    }

    [TestMethod]
    public void TrainEval_PropagateAndControlDropout()
    {
        var model = new Encoder(new Generator(6));
        Assert.IsTrue(model.GetModule("layer.1.dropout").IsTraining);
        model.Eval();
        Assert.IsFalse(model.GetModule("layer.1.dropout").IsTraining);
        var ids = Tensor.FromInt32([3, 4, 5], 1, 3);
        CollectionAssert.AreEqual(model.Forward(ids).ToArray(), model.Forward(ids).ToArray(), "eval is deterministic");
        model.Train();
        var drop = (Dropout)model.GetModule("layer.0.dropout");
        Assert.IsTrue(drop.Forward(Tensor.Ones(100)).ToArray().Any(v => v == 0f));
    }

    [TestMethod]
    public void StateDict_IsLiveAndLoadChecksShapesAndNames()
    {
        var a = new Encoder(new Generator(7));
        var b = new Encoder(new Generator(8));
        var state = a.StateDict();
        Assert.AreEqual("embeddings.weight", state.GetAt(0).Key);
        Assert.AreSame(a.GetParameter("layer.1.LayerNorm.bias"), state["layer.1.LayerNorm.bias"]);

        var result = b.LoadStateDict(state, copy: true);
        Assert.AreEqual(0, result.MissingKeys.Count + result.UnexpectedKeys.Count);
        CollectionAssert.AreEqual(a.GetParameter("layer.0.attention.query.weight").ToArray(), b.GetParameter("layer.0.attention.query.weight").ToArray());
        Assert.AreNotSame(a.GetParameter("layer.0.attention.query.weight"), b.GetParameter("layer.0.attention.query.weight"));

        var bad = new Dictionary<string, Tensor>(state) { ["layer.0.attention.query.weight"] = Tensor.Zeros(4, 5) };
        var ex = Assert.ThrowsExactly<ArgumentException>(() => b.LoadStateDict(bad));
        StringAssert.Contains(ex.Message, "layer.0.attention.query.weight");
        StringAssert.Contains(ex.Message, "[4, 5]");
        StringAssert.Contains(ex.Message, "[4, 4]");

        var partial = new Dictionary<string, Tensor> { ["embeddings.weight"] = Tensor.Zeros(10, 4), ["pooler.dense.weight"] = Tensor.Zeros(1) };
        var strictEx = Assert.ThrowsExactly<ArgumentException>(() => b.LoadStateDict(partial));
        StringAssert.Contains(strictEx.Message, "pooler.dense.weight");
        StringAssert.Contains(strictEx.Message, "layer.1.LayerNorm.bias");
        var loose = b.LoadStateDict(partial, strict: false);
        CollectionAssert.AreEqual(new[] { "pooler.dense.weight" }, loose.UnexpectedKeys.ToArray());
        Assert.AreEqual(10, loose.MissingKeys.Count);
        Assert.AreEqual(0f, b.GetParameter("embeddings.weight").Sum().Item(), "zero-copy assignment");
        Assert.IsTrue(b.GetParameter("embeddings.weight").RequiresGrad);
    }

    [TestMethod]
    public void ZeroCopyLoad_OfFrozenBFloat16Weight()
    {
        var layer = new Linear(4, 3, new Generator(9));
        layer.SetRequiresGrad(false);
        var w = Tensor.Randn(new Generator(10), 3, 4).To(DType.BFloat16);
        layer.ReplaceParameter("weight", w);
        Assert.AreSame(w, layer.Weight);
        var x = Tensor.Randn(new Generator(11), 2, 4);
        GradCheck.AssertClose(x.Linear(w.To(DType.Float32), layer.Bias).ToArray(), layer.Forward(x).ToArray(), 1e-5);
        var trainable = new Linear(4, 3, new Generator(9));
        Assert.ThrowsExactly<ArgumentException>(() => trainable.ReplaceParameter("weight", w));
    }

    private sealed class TiedModel : Module
    {
        public TiedModel(Tensor shared)
        {
            RegisterModule("embed_tokens", new Embedding(shared));
            RegisterModule("lm_head", new Linear(shared));
        }
    }

    [TestMethod]
    public void TiedWeights_AreOneParameterButTwoStateDictEntries()
    {
        var shared = Tensor.Randn(new Generator(14), 6, 4);
        var model = new TiedModel(shared);
        Assert.AreEqual(1, model.Parameters().Count());
        CollectionAssert.AreEqual(new[] { "embed_tokens.weight" }, model.NamedParameters().Select(p => p.Name).ToArray());
        CollectionAssert.AreEqual(new[] { "embed_tokens.weight", "lm_head.weight" }, model.StateDict().Keys.ToArray());
        // Both uses accumulate into the one gradient.
        var ids = Tensor.FromInt32([1, 1], 2);
        var emb = (Embedding)model.GetModule("embed_tokens");
        var head = (Linear)model.GetModule("lm_head");
        head.Forward(emb.Forward(ids)).Sum().Backward();
        Assert.IsNotNull(shared.Grad);
        _ = new AdamW(model.Parameters());   // no duplicate-parameter error
    }

    [TestMethod]
    public void LayerInitialisation_FollowsPyTorchBounds()
    {
        var layer = new Linear(25, 40, new Generator(12));
        var w = layer.Weight.ToArray();
        var b = layer.Bias!.ToArray();
        Assert.IsTrue(w.All(v => Math.Abs(v) <= 0.2f) && w.Max() > 0.19f, "U(−1/√25, 1/√25)");
        Assert.IsTrue(b.All(v => Math.Abs(v) <= 0.2f));
        var emb = new Embedding(5, 3, new Generator(13), paddingIndex: 2);
        CollectionAssert.AreEqual(new float[3], emb.Weight.Narrow(0, 2, 1).ToArray());
        var ln = new LayerNorm(3);
        CollectionAssert.AreEqual(new float[] { 1, 1, 1 }, ln.Weight!.ToArray());
        CollectionAssert.AreEqual(new float[] { 0, 0, 0 }, ln.Bias!.ToArray());
    }
}
