using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.NN;

/// <summary>
/// A named parameter slot of a <see cref="Module"/>. Modules read <see cref="Value"/> at every forward, so loading a
/// state dict (or swapping in a memory-mapped tensor) replaces the tensor behind the slot without touching module code.
/// </summary>
public sealed class Parameter
{
    internal Parameter(string name, Tensor value)
    {
        Name = name;
        Value = value;
    }

    /// <summary>The local name ("weight"); the dotted path comes from the module tree.</summary>
    public string Name { get; }

    /// <summary>The current tensor.</summary>
    public Tensor Value { get; internal set; }
}

/// <summary>A named child slot of a <see cref="Module"/>: the unit that <see cref="Module.ReplaceModule"/> swaps.</summary>
public abstract class ModuleSlot
{
    private protected ModuleSlot(string name) => Name = name;

    /// <summary>The local name ("query", "0").</summary>
    public string Name { get; }

    /// <summary>The module currently in the slot.</summary>
    public abstract Module Untyped { get; }

    /// <summary>The type every occupant must derive from.</summary>
    public abstract Type SlotType { get; }

    internal abstract void Set(Module module);
}

/// <summary>
/// A typed child slot. Model code keeps the slot (not the module) and reads <see cref="Module"/> at every forward,
/// so a replacement (e.g. a LoRA wrapper of a <see cref="LinearLayer"/>) takes effect immediately.
/// </summary>
public sealed class ModuleSlot<T> : ModuleSlot where T : Module
{
    internal ModuleSlot(string name, T module)
        : base(name) => Module = module;

    /// <summary>The current occupant.</summary>
    public T Module { get; private set; }

    /// <inheritdoc/>
    public override Module Untyped => Module;

    /// <inheritdoc/>
    public override Type SlotType => typeof(T);

    internal override void Set(Module module) => Module = (T)module;
}
