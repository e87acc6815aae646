using Microsoft.ML.SearchSpace.Option;

namespace Microsoft.ML.SearchSpace;

/// <summary>Declares a numeric search range for a member of a <see cref="SearchSpace{T}"/> option class.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field, Inherited = false, AllowMultiple = false)]
public sealed class RangeAttribute : Attribute
{
    /// <summary>A double range.</summary>
    public RangeAttribute(double min, double max, bool logBase = false)
        : this(min, max, null, logBase, new UniformDoubleOption(min, max, logBase))
    {
    }

    /// <summary>A double range with an initial value.</summary>
    public RangeAttribute(double min, double max, double init, bool logBase = false)
        : this(min, max, init, logBase, new UniformDoubleOption(min, max, logBase, init))
    {
    }

    /// <summary>An int range.</summary>
    public RangeAttribute(int min, int max, bool logBase = false)
        : this(min, max, null, logBase, new UniformIntOption(min, max, logBase))
    {
    }

    /// <summary>An int range with an initial value.</summary>
    public RangeAttribute(int min, int max, int init, bool logBase = false)
        : this(min, max, init, logBase, new UniformIntOption(min, max, logBase, init))
    {
    }

    /// <summary>A float range.</summary>
    public RangeAttribute(float min, float max, bool logBase = false)
        : this(min, max, null, logBase, new UniformSingleOption(min, max, logBase))
    {
    }

    /// <summary>A float range with an initial value.</summary>
    public RangeAttribute(float min, float max, float init, bool logBase = false)
        : this(min, max, init, logBase, new UniformSingleOption(min, max, logBase, init))
    {
    }

    private RangeAttribute(object min, object max, object? init, bool logBase, UniformNumericOption option)
    {
        Min = min;
        Max = max;
        Init = init!;
        LogBase = logBase;
        Option = option;
    }

    /// <summary>The lower bound.</summary>
    public object Min { get; }

    /// <summary>The upper bound.</summary>
    public object Max { get; }

    /// <summary>The initial value (null when not given).</summary>
    public object Init { get; }

    /// <summary>Whether the range is searched on a log scale.</summary>
    public bool LogBase { get; }

    internal UniformNumericOption Option { get; }
}

/// <summary>Declares a discrete set of candidates for a member of a <see cref="SearchSpace{T}"/> option class.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field, Inherited = false, AllowMultiple = false)]
public sealed class ChoiceAttribute : Attribute
{
    /// <summary>The candidates (the default is the first).</summary>
    public ChoiceAttribute(params object[] candidates)
    {
        Candidates = candidates ?? throw new ArgumentNullException(nameof(candidates));
        DefaultValue = null!;
        Option = new ChoiceOption(candidates);
    }

    /// <summary>The candidates and a default.</summary>
    public ChoiceAttribute(object[] candidates, object defaultValue)
    {
        Candidates = candidates ?? throw new ArgumentNullException(nameof(candidates));
        DefaultValue = defaultValue;
        Option = new ChoiceOption(candidates, defaultValue);
    }

    /// <summary>The candidates.</summary>
    public object[] Candidates { get; }

    /// <summary>The default candidate (null when not given).</summary>
    public object DefaultValue { get; }

    internal ChoiceOption Option { get; }
}

/// <summary>Declares a boolean member of a <see cref="SearchSpace{T}"/> option class as a choice between true and false.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field, Inherited = false, AllowMultiple = false)]
public sealed class BooleanChoiceAttribute : Attribute
{
    /// <summary>A choice between true and false, defaulting to true.</summary>
    public BooleanChoiceAttribute()
        : this(true)
    {
    }

    /// <summary>A choice between true and false with a default.</summary>
    public BooleanChoiceAttribute(bool defaultValue)
    {
        DefaultValue = defaultValue;
        Option = new ChoiceOption(new object[] { true, false }, defaultValue);
    }

    /// <summary>The default value.</summary>
    public bool DefaultValue { get; }

    internal ChoiceOption Option { get; }
}

/// <summary>Marks a member whose type is itself an option class: its members form a nested search space.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field, Inherited = false, AllowMultiple = false)]
public sealed class NestOptionAttribute : Attribute
{
}
