using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tuners;
using Microsoft.ML.Peft.Vera;

namespace Microsoft.ML.Peft.Tests.Vera;

/// <summary>
/// VeRA's shared projections in PEFT's file layout (save_projection): "base_model.vera_A" [r, in_max] and
/// "base_model.vera_B" [out_max, r], as PEFT's get_peft_model_state_dict writes them (adapter name removed); loading
/// takes them from the file, and files without them (save_projection false, this library's first layout) regenerate
/// them from projection_prng_key.
/// </summary>
[TestClass]
public sealed class VeraPeftLayoutTests
{
    /// <summary>q_proj 8→8, fc1 8→12, fc2 12→8 in 2 layers: shared A [4, 12], B [12, 4].</summary>
    private static VeraConfig Config(bool saveProjection = true) => new()
    {
        TargetModules = new[] { "q_proj", "fc1", "fc2" }, Rank = 4, ProjectionPrngKey = 3, SaveProjection = saveProjection,
    };

    private static string TempDir() => Path.Combine(Path.GetTempPath(), "vera-layout-" + Guid.NewGuid().ToString("N"));

    /// <summary>A VeRA model with λ vectors as after training.</summary>
    private static (TinyModel Model, PeftModel Peft) Trained(bool saveProjection = true)
    {
        var model = new TinyModel(new Generator(7));
        var peft = PeftModel.Inject(model, Config(saveProjection), generator: new Generator(1));
        var noise = new Generator(8);
        using (Autograd.NoGrad())
        {
            foreach (var (_, tuner) in peft.TunerLayers())
            {
                var layer = (VeraLinear)tuner;
                layer.LambdaB("default").CopyFrom_(Tensor.Randn(noise, layer.OutFeatures).Mul(0.2f));
                layer.LambdaD("default").Add_(Tensor.Randn(noise, 4).Mul(0.05f));
            }
        }
        return (model, peft);
    }

    [TestMethod]
    public void Save_WritesPeftsProjectionKeys_WithTheSharedTensors()
    {
        var (_, peft) = Trained();
        var (a, b) = ((VeraLinear)peft.TunerLayers().First().Layer).SharedProjections("default");
        string dir = TempDir();
        try
        {
            peft.SavePretrained(dir);
            using var file = SafeTensorsFile.Open(Path.Combine(dir, PeftModel.WeightsFileName));
            Assert.AreEqual(2 + 2 * 2 * 3, file.Names.Count, "the projections once, λ_b and λ_d of 6 layers");
            CollectionAssert.AreEqual(new[] { 4, 12 }, file.GetTensor("base_model.vera_A").Shape);
            CollectionAssert.AreEqual(new[] { 12, 4 }, file.GetTensor("base_model.vera_B").Shape);
            var stored = new float[48];
            file.GetTensor("base_model.vera_A").CopyToFloat32(stored);
            CollectionAssert.AreEqual(a.ToArray(), stored);
            file.GetTensor("base_model.vera_B").CopyToFloat32(stored);
            CollectionAssert.AreEqual(b.ToArray(), stored);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        Assert.IsFalse(Trained(saveProjection: false).Peft.GetAdapterStateDict().Keys.Any(k => k.Contains("vera_A", StringComparison.Ordinal)), "save_projection false: PEFT saves none");
    }

    /// <summary>
    /// Projections that projection_prng_key would not give (as torch's generator draws them in PEFT) load from the file:
    /// the shared tensors hold the file's values and the outputs are the saving model's, bit for bit.
    /// </summary>
    [TestMethod]
    public void Load_TakesTheFilesProjections_AsForAnAdapterTrainedByPeft()
    {
        var (model, peft) = Trained();
        var (a, b) = ((VeraLinear)peft.TunerLayers().First().Layer).SharedProjections("default");
        var other = new VeraConfig { Rank = 4, ProjectionPrngKey = 42 }.CreateProjections(12, 12);
        using (Autograd.NoGrad())
        {
            a.CopyFrom_(other.A);
            b.CopyFrom_(other.B);
        }
        var x = LoraFixtures.Input();
        var expected = model.Forward(x).ToArray();
        string dir = TempDir();
        try
        {
            peft.SavePretrained(dir);
            var fresh = new TinyModel(new Generator(7));
            var loaded = PeftModel.FromPretrained(fresh, dir);
            var layers = loaded.TunerLayers().Select(t => (VeraLinear)t.Layer).ToList();
            CollectionAssert.AreEqual(other.A.ToArray(), layers[0].SharedProjections("default").A.ToArray());
            CollectionAssert.AreEqual(other.B.ToArray(), layers[0].SharedProjections("default").B.ToArray());
            Assert.IsTrue(layers.All(l => ReferenceEquals(l.SharedProjections("default").A, layers[0].SharedProjections("default").A)), "still one shared tensor");
            CollectionAssert.AreEqual(expected, fresh.Forward(x).ToArray());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A file in the old layout (λ vectors only, save_projection true in its config) still loads, the projections regenerated from the key.</summary>
    [TestMethod]
    public void Load_OldLayoutWithoutProjections_RegeneratesThemFromTheKey()
    {
        var (model, peft) = Trained();
        var x = LoraFixtures.Input();
        var expected = model.Forward(x).ToArray();
        string dir = TempDir();
        try
        {
            peft.SavePretrained(dir);
            string weights = Path.Combine(dir, PeftModel.WeightsFileName);
            var writer = new SafeTensorsWriter();
            using (var file = SafeTensorsFile.Open(weights))
            {
                foreach (var tensor in file.Tensors.Where(t => !t.Name.StartsWith("base_model.vera_", StringComparison.Ordinal))) writer.Add(tensor);
                writer.Save(weights + ".old");
            }
            File.Move(weights + ".old", weights, overwrite: true);
            Assert.IsTrue(((VeraConfig)PeftConfig.Load(dir)).SaveProjection);
            var fresh = new TinyModel(new Generator(7));
            PeftModel.FromPretrained(fresh, dir);
            CollectionAssert.AreEqual(expected, fresh.Forward(x).ToArray());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
