using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Tests.Training;
using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.MLNet;

/// <summary>
/// A fast stand-in for a pretrained model in pipeline tests: stories260K's real tokenizer in front of
/// <see cref="TinyClassifier"/>; its "adapter" is the trainable head, saved as safetensors.
/// </summary>
internal sealed class TinyBackend : TinyClassifierHost, ITextClassifierBackend
{
    private static readonly Lazy<Tokenizer> SharedTokenizer = new(() => TokenizerLoader.FromFolder(TestPaths.Stories260K));

    public TinyBackend(int numLabels, ulong seed, BaseModelReference reference)
        : base(new TinyClassifier(512, 16, numLabels, seed, baseSeed: 2024)) => BaseModel = reference;

    public Tokenizer Tokenizer => SharedTokenizer.Value;

    public int PaddingId => 0;

    public bool UsesTokenTypeIds => false;

    public BaseModelReference BaseModel { get; }

    public string PeftType => "TINY";

    public void SaveAdapter(string folder)
    {
        Directory.CreateDirectory(folder);
        var writer = new SafeTensorsWriter();
        foreach (var (name, p) in Model.NamedParameters().Where(p => p.Parameter.RequiresGrad)) writer.Add(name, p.ToArray(), p.Shape);
        writer.Save(Path.Combine(folder, "adapter_model.safetensors"));
        AtomicFile.WriteAllText(Path.Combine(folder, "adapter_config.json"), "{\"peft_type\": \"TINY\", \"base_model_name_or_path\": \"" + BaseModel.NameOrPath + "\"}");
    }

    public void LoadAdapter(string folder)
    {
        using var file = SafeTensorsFile.Open(Path.Combine(folder, "adapter_model.safetensors"));
        foreach (var (name, p) in Model.NamedParameters().Where(p => p.Parameter.RequiresGrad))
        {
            using (Microsoft.ML.Peft.Tensors.Autograd.NoGrad()) file.GetTensor(name).AsFloat32().CopyTo(p.AsSpan<float>());
        }
    }
}

/// <summary>Forwards <see cref="Training.ISequenceClassifier"/> to a <see cref="TinyClassifier"/>.</summary>
internal abstract class TinyClassifierHost(TinyClassifier model)
{
    public TinyClassifier Model { get; } = model;

    public Microsoft.ML.Peft.NN.Module Module => Model;

    public int NumLabels => Model.NumLabels;

    public IReadOnlyList<Microsoft.ML.Peft.Tensors.Generator> RandomStreams => [];

    public Microsoft.ML.Peft.Tensors.Tensor Forward(Microsoft.ML.Peft.Training.TokenBatch batch) => Model.Forward(batch);
}

/// <summary>Creates <see cref="TinyBackend"/>s and counts how often a model was built.</summary>
internal sealed class TinyFactory : ITextClassifierFactory
{
    public int Creates { get; private set; }

    public int Loads { get; private set; }

    public ITextClassifierBackend Create(TextClassificationTrainerOptions options, int numLabels)
    {
        Creates++;
        return new TinyBackend(numLabels, (ulong)options.Seed, BaseModelReference.Describe(options.BaseModel!, TestPaths.Stories260K));
    }

    public ITextClassifierBackend Load(BaseModelReference baseModel, string adapterFolder, int numLabels, Action<string>? log)
    {
        Loads++;
        baseModel.Verify(TestPaths.Stories260K);
        var backend = new TinyBackend(numLabels, seed: 12345, baseModel);
        backend.LoadAdapter(adapterFolder);
        return backend;
    }
}
