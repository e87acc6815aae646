using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Adapters;

/// <summary>
/// Injects an AdapterFusion: reads each fused adapter's config and weights (checking every file, key and shape before
/// the model changes), adds them as frozen serial adapters, then adds the fusion at every layer they share.
/// </summary>
internal static class AdapterFusionInjector
{
    public static IReadOnlyList<string> Inject(Module model, AdapterFusionConfig config, string fusionName, Generator generator)
    {
        config.Validate();
        var sources = config.AdapterPaths.Select(path => (Path: path, Config: ReadConfig(path))).ToList();
        var fusedNames = Enumerable.Range(0, sources.Count).Select(i => $"{fusionName}_{i}").ToList();

        // Each fused adapter is injected and filled from its file; its modules must be the first one's. A failure
        // part way (a weights file that does not fit) takes the layers this call wrapped out again.
        var before = model.NamedModules().Where(m => m.Module is ITunerLayer).Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
        try
        {
            IReadOnlyList<string>? modules = null;
            for (int i = 0; i < sources.Count; i++)
            {
                var (path, adapterConfig) = sources[i];
                var wrapped = BottleneckAdapterInjector.Inject(model, adapterConfig, fusedNames[i], generator);
                if (modules is not null && !wrapped.SequenceEqual(modules))
                    throw new PeftConfigException($"ADAPTER_FUSION: '{path}' adapts [{string.Join(", ", wrapped)}] but '{config.AdapterPaths[0]}' adapts [{string.Join(", ", modules)}]; fused adapters must sit on the same modules");
                modules = wrapped;
                LoadWeights(model, wrapped, fusedNames[i], path);
            }
            foreach (var name in modules!) ((BottleneckAdapterLinear)model.GetModule(name)).AddFusion(fusionName, fusedNames, generator);
            return modules;
        }
        catch
        {
            foreach (var (name, module) in model.NamedModules().Where(m => m.Module is ITunerLayer && !before.Contains(m.Name)).ToList())
                model.ReplaceModule(name, ((ITunerLayer)module).BaseLayer);
            throw;
        }
    }

    private static BottleneckAdapterConfig ReadConfig(string path)
    {
        var loaded = PeftConfig.Load(path);
        if (loaded is not BottleneckAdapterConfig bottleneck)
            throw new PeftConfigException($"ADAPTER_FUSION: '{path}' holds a {loaded.PeftType} adapter; only BOTTLENECK_ADAPTER adapters can be fused");
        if (bottleneck.Placement != AdapterPlacement.Serial)
            throw new PeftConfigException($"ADAPTER_FUSION: '{path}' is a parallel adapter; only serial adapters can be fused");
        // The fused adapters keep their own modules_to_save out of the fusion (the fusion config names its own).
        bottleneck.ModulesToSave = null;
        return bottleneck;
    }

    private static void LoadWeights(Module model, IReadOnlyList<string> modules, string adapterName, string folder)
    {
        string file = Path.Combine(folder, PeftModel.WeightsFileName);
        if (!File.Exists(file)) throw new PeftConfigException($"ADAPTER_FUSION: adapter weights '{file}' do not exist");
        using var weights = SafeTensorsFile.Open(file);
        var expected = modules
            .SelectMany(m => ((BottleneckAdapterLinear)model.GetModule(m)).AdapterTensors(adapterName).Select(t => (Key: PeftModel.KeyPrefix + m + "." + t.Suffix, t.Tensor)))
            .ToList();
        var problems = new List<string>();
        foreach (var (key, tensor) in expected)
        {
            if (!weights.TryGetTensor(key, out var view)) problems.Add($"missing key '{key}'");
            else if (!view.Shape.AsSpan().SequenceEqual(tensor.Shape)) problems.Add($"'{key}' has shape [{string.Join(", ", view.Shape)}] in the file but [{string.Join(", ", tensor.ShapeArray())}] in the model");
        }
        if (problems.Count > 0) throw new PeftConfigException($"ADAPTER_FUSION: {file} does not fit the adapter it should hold:\n  " + string.Join("\n  ", problems));
        using (Autograd.NoGrad())
        {
            foreach (var (key, tensor) in expected) weights.GetTensor(key).CopyToFloat32(tensor.AsSpan<float>());
        }
    }
}
