namespace Microsoft.ML.SearchSpace.Option;

/// <summary>
/// A numeric range [Min, Max] mapped linearly (or logarithmically when <see cref="LogBase"/>) onto the feature [0, 1]:
/// x ↦ (x − Min)/(Max − Min), or (ln x − ln Min)/(ln Max − ln Min).
/// </summary>
public abstract class UniformNumericOption : OptionBase
{
    /// <summary>A range; <paramref name="max"/> must exceed <paramref name="min"/>, and <paramref name="min"/> must be positive on a log scale.</summary>
    public UniformNumericOption(double min, double max, bool logBase = false)
    {
        if (!(max > min))
            throw new ArgumentException($"max must be larger than min (min {min}, max {max}).", nameof(max));
        if (logBase && !(min > 0))
            throw new ArgumentException($"min must be larger than 0 if logBase is true (min {min}).", nameof(min));
        Min = min;
        Max = max;
        LogBase = logBase;
        Default = new[] { 0.0 };
    }

    /// <summary>The lower bound.</summary>
    public double Min { get; }

    /// <summary>The upper bound.</summary>
    public double Max { get; }

    /// <summary>Whether the range is searched on a log scale.</summary>
    public bool LogBase { get; }

    /// <inheritdoc/>
    public override int FeatureSpaceDim => 1;

    /// <inheritdoc/>
    public override int?[] Step => new int?[] { null };

    /// <inheritdoc/>
    public override double[] MappingToFeatureSpace(Parameter param)
    {
        ArgumentNullException.ThrowIfNull(param);
        double x = param.AsType<double>();
        if (!(x >= Min && x <= Max))
            throw new ArgumentOutOfRangeException(nameof(param), $"{x} is not within [{Min}, {Max}]");
        return LogBase
            ? new[] { (Math.Log(x) - Math.Log(Min)) / (Math.Log(Max) - Math.Log(Min)) }
            : new[] { (x - Min) / (Max - Min) };
    }

    /// <inheritdoc/>
    public override Parameter SampleFromFeatureSpace(double[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length != 1)
            throw new ArgumentException($"values length must be 1, got {values.Length}.", nameof(values));
        double u = values[0];
        if (!(u >= 0 && u <= 1))
            throw new ArgumentOutOfRangeException(nameof(values), $"{u} must be between [0,1]");
        return Parameter.FromDouble(LogBase ? Min * Math.Pow(Max / Min, u) : Min + (Max - Min) * u);
    }
}

/// <summary>A double range.</summary>
public sealed class UniformDoubleOption : UniformNumericOption
{
    /// <summary>A double range with an optional default.</summary>
    public UniformDoubleOption(double min, double max, bool logBase = false, double? defaultValue = null)
        : base(min, max, logBase)
    {
        if (defaultValue is double value)
            Default = MappingToFeatureSpace(Parameter.FromDouble(value));
    }
}

/// <summary>A float range; sampled values are rounded to float.</summary>
public sealed class UniformSingleOption : UniformNumericOption
{
    /// <summary>A float range with an optional default.</summary>
    public UniformSingleOption(float min, float max, bool logBase = false, float? defaultValue = null)
        : base(min, max, logBase)
    {
        if (defaultValue is float value)
            Default = MappingToFeatureSpace(Parameter.FromFloat(value));
    }

    /// <inheritdoc/>
    public override double[] MappingToFeatureSpace(Parameter param)
        => base.MappingToFeatureSpace(Parameter.FromDouble((param ?? throw new ArgumentNullException(nameof(param))).AsType<float>()));

    /// <inheritdoc/>
    public override Parameter SampleFromFeatureSpace(double[] values)
        => Parameter.FromFloat((float)base.SampleFromFeatureSpace(values).AsType<double>());
}

/// <summary>An int range; a sampled value is rounded down (floor).</summary>
public sealed class UniformIntOption : UniformNumericOption
{
    /// <summary>An int range with an optional default.</summary>
    public UniformIntOption(int min, int max, bool logBase = false, int? defaultValue = null)
        : base(min, max, logBase)
    {
        if (defaultValue is int value)
            Default = MappingToFeatureSpace(Parameter.FromInt(value));
    }

    /// <inheritdoc/>
    public override double[] MappingToFeatureSpace(Parameter param)
        => base.MappingToFeatureSpace(Parameter.FromDouble((param ?? throw new ArgumentNullException(nameof(param))).AsType<int>()));

    /// <inheritdoc/>
    public override Parameter SampleFromFeatureSpace(double[] values)
        => Parameter.FromInt(Convert.ToInt32(Math.Floor(base.SampleFromFeatureSpace(values).AsType<double>())));
}
