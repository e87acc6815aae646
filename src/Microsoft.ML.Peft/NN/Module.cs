using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.NN;

/// <summary>
/// Base class of layers and models: a tree of named child modules and named parameters with PyTorch/Hugging Face
/// dotted names ("encoder.layer.0.attention.self.query.weight"), a training flag, freezing and state dicts.
/// </summary>
/// <remarks>
/// Subclasses register children with <see cref="RegisterModule{T}"/> and parameters with
/// <see cref="RegisterParameter"/> in their constructor, keep the returned slots, and read
/// <c>slot.Module</c> / <c>parameter.Value</c> in their forward method. Forward signatures differ per module, so
/// the base class declares none. Parameters should be created outside any <see cref="TensorScope"/>; registering
/// one takes its buffer out of scope ownership anyway.
/// </remarks>
public abstract class Module
{
    private readonly List<ModuleSlot> children = [];
    private readonly List<Parameter> parameters = [];

    /// <summary>Whether the module is in training mode (dropout active). New modules are in training mode.</summary>
    public bool IsTraining { get; private set; } = true;

    /// <summary>The direct children, in registration order.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren() => children.Select(c => (c.Name, c.Untyped));

    /// <summary>This module ("") and every descendant with its dotted name, depth first in registration order.</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules()
    {
        yield return ("", this);
        foreach (var child in children)
        {
            foreach (var (name, module) in child.Untyped.NamedModules())
                yield return (name.Length == 0 ? child.Name : child.Name + "." + name, module);
        }
    }

    /// <summary>
    /// Every parameter of the subtree with its dotted name (own parameters first, then children's). A tensor shared by
    /// several slots (tied weights) is listed once, under its first name, unless <paramref name="removeDuplicates"/>
    /// is false — as PyTorch's named_parameters.
    /// </summary>
    public IEnumerable<(string Name, Tensor Parameter)> NamedParameters(bool removeDuplicates = true)
    {
        var seen = removeDuplicates ? new HashSet<Tensor>(ReferenceEqualityComparer.Instance) : null;
        foreach (var (path, module) in NamedModules())
        {
            foreach (var p in module.parameters)
            {
                if (seen is null || seen.Add(p.Value)) yield return (path.Length == 0 ? p.Name : path + "." + p.Name, p.Value);
            }
        }
    }

    /// <summary>Every parameter tensor of the subtree; with <paramref name="trainableOnly"/> only those requiring grad.</summary>
    public IEnumerable<Tensor> Parameters(bool trainableOnly = false) =>
        NamedParameters().Select(p => p.Parameter).Where(p => !trainableOnly || p.RequiresGrad);

    /// <summary>
    /// Frozen weights this module holds outside its parameters (QuantizedLinear's 4-bit codes), as the number of
    /// elements they stand for. PEFT's <c>get_nb_trainable_parameters</c> counts bitsandbytes' packed
    /// <c>Params4bit</c> at their unpacked size, so a quantized model's "all params" equals the float model's.
    /// </summary>
    public virtual long PackedWeightCount => 0;

    /// <summary>The module at a dotted path ("" is this module).</summary>
    public Module GetModule(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0) return this;
        var (parent, slot) = FindSlot(path);
        _ = parent;
        return slot.Untyped;
    }

    /// <summary>
    /// Replaces the module at a dotted path, e.g. <c>"encoder.layer.0.attention.self.query"</c>; the replacement must
    /// derive from the slot's declared type (a <see cref="LinearLayer"/> slot accepts any linear layer). Returns the
    /// module that was there.
    /// </summary>
    public Module ReplaceModule(string path, Module replacement)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        var (_, slot) = FindSlot(path);
        if (!slot.SlotType.IsInstanceOfType(replacement))
            throw new ArgumentException($"cannot put a {replacement.GetType().Name} into '{path}': the slot holds {slot.SlotType.Name} modules");
        var old = slot.Untyped;
        slot.Set(replacement);
        return old;
    }

    /// <summary>The parameter tensor at a dotted path ("encoder.layer.0.output.dense.weight").</summary>
    public Tensor GetParameter(string path) => FindParameter(path).Value;

    /// <summary>
    /// Replaces the tensor behind a parameter (zero-copy loading, dtype changes). Shapes must match; the parameter
    /// keeps its trainable state (a trainable parameter needs a float32 tensor).
    /// </summary>
    public void ReplaceParameter(string path, Tensor value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var p = FindParameter(path);
        if (!value.Shape.SequenceEqual(p.Value.Shape))
            throw new ArgumentException($"parameter '{path}': shape {ShapeText.Format(value.Shape)} does not match the module's {ShapeText.Format(p.Value.Shape)}");
        bool trainable = p.Value.RequiresGrad;
        if (trainable && value.DType != DType.Float32)
            throw new ArgumentException($"parameter '{path}' is trainable but the new tensor is {DTypeInfo.Name(value.DType)}; freeze it first or convert to float32");
        if (!value.IsLeaf) value = value.Detach();
        value.MakePersistent();
        value.RequiresGrad = trainable;
        value.Name = path;
        p.Value = value;
    }

    /// <summary>Sets training mode on this module and every descendant (dropout is active only in training).</summary>
    public void Train(bool mode = true)
    {
        foreach (var (_, m) in NamedModules()) m.IsTraining = mode;
    }

    /// <summary>Sets evaluation mode on the subtree.</summary>
    public void Eval() => Train(false);

    /// <summary>Freezes (false) or unfreezes (true) every parameter of the subtree. Non-float32 parameters stay frozen.</summary>
    public void SetRequiresGrad(bool requiresGrad)
    {
        foreach (var (_, p) in NamedParameters())
        {
            if (p.DType == DType.Float32 || !requiresGrad) p.RequiresGrad = requiresGrad;
        }
    }

    /// <summary>
    /// The live parameter tensors by dotted name, in registration order (a view, not a copy); tied weights appear
    /// under every name, as in PyTorch's state_dict.
    /// </summary>
    public OrderedDictionary<string, Tensor> StateDict()
    {
        var result = new OrderedDictionary<string, Tensor>();
        foreach (var (name, p) in NamedParameters(removeDuplicates: false)) result.Add(name, p);
        return result;
    }

    /// <summary>
    /// Loads tensors by dotted name. Every shape is checked before anything changes (a mismatch names the tensor and
    /// both shapes). With <paramref name="copy"/> the values are copied (and converted to float32) into the existing
    /// parameters; otherwise the given tensors replace them (zero-copy; trainable parameters need float32).
    /// With <paramref name="strict"/> missing or unexpected names throw, listing them.
    /// </summary>
    public StateDictLoadResult LoadStateDict(IReadOnlyDictionary<string, Tensor> state, bool strict = true, bool copy = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        var own = NamedParameters(removeDuplicates: false).ToList();
        var ownNames = new HashSet<string>(own.Select(p => p.Name));
        var missing = own.Where(p => !state.ContainsKey(p.Name)).Select(p => p.Name).ToList();
        var unexpected = state.Keys.Where(k => !ownNames.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (strict && (missing.Count > 0 || unexpected.Count > 0))
            throw new ArgumentException($"LoadStateDict: missing keys [{string.Join(", ", missing)}]; unexpected keys [{string.Join(", ", unexpected)}]");
        foreach (var (name, p) in own)
        {
            if (state.TryGetValue(name, out var t) && !t.Shape.SequenceEqual(p.Shape))
                throw new ArgumentException($"LoadStateDict: '{name}' has shape {ShapeText.Format(t.Shape)} in the state dict but {ShapeText.Format(p.Shape)} in the module");
        }
        foreach (var (name, p) in own)
        {
            if (!state.TryGetValue(name, out var t)) continue;
            if (copy)
            {
                using (Autograd.NoGrad()) p.CopyFrom_(t);
            }
            else
            {
                ReplaceParameter(name, t);
            }
        }
        return new StateDictLoadResult(missing, unexpected);
    }

    /// <summary>Registers a child module under a local name (no dots) and returns its slot.</summary>
    protected ModuleSlot<T> RegisterModule<T>(string name, T module) where T : Module
    {
        ArgumentNullException.ThrowIfNull(module);
        CheckLocalName(name);
        var slot = new ModuleSlot<T>(name, module);
        children.Add(slot);
        return slot;
    }

    /// <summary>
    /// Registers a parameter under a local name. A float32 tensor becomes trainable (RequiresGrad) like
    /// torch.nn.Parameter; other dtypes are frozen storage.
    /// </summary>
    protected Parameter RegisterParameter(string name, Tensor value)
    {
        ArgumentNullException.ThrowIfNull(value);
        CheckLocalName(name);
        if (!value.IsLeaf) value = value.Detach();
        value.MakePersistent();
        value.RequiresGrad = value.DType == DType.Float32;
        value.Name = name;
        var p = new Parameter(name, value);
        parameters.Add(p);
        return p;
    }

    private void CheckLocalName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"invalid local name '{name}': must be non-empty without dots");
        if (children.Any(c => c.Name == name) || parameters.Any(p => p.Name == name))
            throw new ArgumentException($"'{name}' is already registered in {GetType().Name}");
    }

    private (Module Parent, ModuleSlot Slot) FindSlot(string path)
    {
        var parts = path.Split('.');
        Module current = this;
        for (int i = 0; i < parts.Length; i++)
        {
            var slot = current.children.FirstOrDefault(c => c.Name == parts[i])
                ?? throw new KeyNotFoundException($"no module '{string.Join('.', parts[..(i + 1)])}' in {GetType().Name} (path '{path}')");
            if (i == parts.Length - 1) return (current, slot);
            current = slot.Untyped;
        }
        throw new KeyNotFoundException($"no module '{path}'");
    }

    private Parameter FindParameter(string path)
    {
        int dot = path.LastIndexOf('.');
        var owner = dot < 0 ? this : GetModule(path[..dot]);
        string local = dot < 0 ? path : path[(dot + 1)..];
        return owner.parameters.FirstOrDefault(p => p.Name == local)
            ?? throw new KeyNotFoundException($"no parameter '{path}' in {GetType().Name}");
    }
}

/// <summary>Names that <see cref="Module.LoadStateDict"/> did not match.</summary>
/// <param name="MissingKeys">Module parameters absent from the state dict.</param>
/// <param name="UnexpectedKeys">State-dict entries with no matching parameter.</param>
public sealed record StateDictLoadResult(IReadOnlyList<string> MissingKeys, IReadOnlyList<string> UnexpectedKeys);
