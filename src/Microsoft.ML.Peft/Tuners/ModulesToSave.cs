using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tuners;

/// <summary>
/// modules_to_save (PEFT's <c>ModulesToSaveWrapper</c>): each listed module gets a full trainable copy of its
/// parameters per adapter, while the original values are kept aside. Instead of wrapping the module (which would need
/// a wrapper of every module type), the active adapter's copies are swapped into the module's parameter slots, so the
/// model's own forward code runs unchanged and parameter names stay the module's ("classifier.weight").
/// </summary>
internal sealed class ModulesToSave
{
    private readonly List<Entry> entries = [];

    /// <summary>
    /// Gives <paramref name="adapterName"/> float32 copies of the modules matching <paramref name="names"/> (exact
    /// name or "." suffix; the outermost match wins) and returns how many modules matched. Copies start from the
    /// original values and are installed only by <see cref="Activate"/>.
    /// </summary>
    public int AddAdapter(Module model, string adapterName, IEnumerable<string> names)
    {
        var selector = ModuleSelector.FromNames(names);
        int matched = 0;
        var tunerPaths = model.NamedModules().Where(m => m.Module is ITunerLayer).Select(m => m.Name).ToList();
        var taken = new List<string>();
        foreach (var (path, module) in model.NamedModules())
        {
            if (path.Length == 0 || !selector.Matches(path)) continue;
            if (taken.Any(t => path.StartsWith(t + ".", StringComparison.Ordinal))) continue;
            if (tunerPaths.Any(t => path == t || path.StartsWith(t + ".", StringComparison.Ordinal) || t.StartsWith(path + ".", StringComparison.Ordinal)))
                throw new PeftConfigException($"modules_to_save '{path}' overlaps an adapter layer; a module cannot be both adapted and saved in full");
            taken.Add(path);
            matched++;
            var entry = entries.FirstOrDefault(e => e.Path == path);
            if (entry is null)
            {
                entry = new Entry(path, module.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter, StringComparer.Ordinal));
                entries.Add(entry);
            }
            if (entry.Copies.ContainsKey(adapterName)) throw new InvalidOperationException($"adapter '{adapterName}' already has a copy of '{path}'");
            var copies = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var (local, original) in entry.Original)
            {
                using (TensorScope.Untracked())
                using (Autograd.NoGrad())
                {
                    var copy = original.DType == DType.Float32 ? original.Clone() : original.To(DType.Float32);
                    copy.Name = path + "." + local;
                    copies[local] = copy;
                }
            }
            entry.Copies[adapterName] = copies;
        }
        return matched;
    }

    /// <summary>
    /// Installs the copies of <paramref name="adapterName"/> (trainable when <paramref name="trainable"/>) into every
    /// module that has them, and the frozen originals everywhere else; null installs the originals everywhere.
    /// </summary>
    public void Activate(Module model, string? adapterName, bool trainable)
    {
        foreach (var entry in entries)
        {
            bool useCopy = adapterName is not null && entry.Copies.ContainsKey(adapterName);
            var source = useCopy ? entry.Copies[adapterName!] : entry.Original;
            foreach (var (local, tensor) in source)
            {
                string name = entry.Path + "." + local;
                model.GetParameter(name).RequiresGrad = false; // so the slot accepts a frozen (possibly non-float32) tensor
                model.ReplaceParameter(name, tensor);
                tensor.RequiresGrad = useCopy && trainable;
            }
        }
    }

    /// <summary>The copies of one adapter by full dotted parameter name (what PEFT saves under the module's own path).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> AdapterTensors(string adapterName)
    {
        foreach (var entry in entries)
        {
            if (!entry.Copies.TryGetValue(adapterName, out var copies)) continue;
            foreach (var (local, tensor) in copies) yield return (entry.Path + "." + local, tensor);
        }
    }

    /// <summary>Elements of every original and copy not currently installed in the model (PEFT counts them all).</summary>
    public long DetachedParameterCount(Module model)
    {
        var installed = new HashSet<Tensor>(model.Parameters(), ReferenceEqualityComparer.Instance);
        long count = 0;
        foreach (var entry in entries)
        {
            foreach (var t in entry.Original.Values.Concat(entry.Copies.Values.SelectMany(c => c.Values)))
            {
                if (!installed.Contains(t)) count += t.Count;
            }
        }
        return count;
    }

    private sealed record Entry(string Path, Dictionary<string, Tensor> Original)
    {
        public Dictionary<string, Dictionary<string, Tensor>> Copies { get; } = new(StringComparer.Ordinal);
    }
}
