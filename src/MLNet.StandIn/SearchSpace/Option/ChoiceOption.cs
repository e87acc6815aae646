namespace Microsoft.ML.SearchSpace.Option;

/// <summary>
/// A choice among distinct values (strings, numbers, bools, enums). Choice i of n occupies the feature interval
/// [i/n, (i+1)/n); a single choice has no feature dimension.
/// </summary>
public sealed class ChoiceOption : OptionBase
{
    /// <summary>A choice among <paramref name="choices"/> (default: the first).</summary>
    public ChoiceOption(params object[] choices)
    {
        ArgumentNullException.ThrowIfNull(choices);
        if (choices.Length == 0 || choices.Length >= 1074)
            throw new ArgumentException("the length of choices must be (0, 1074)", nameof(choices));
        if (choices.Distinct().Count() != choices.Length)
            throw new ArgumentException("choices must not contain repeated values", nameof(choices));
        Choices = choices.Select(c => Parameter.FromObject(c ?? throw new ArgumentException("choices must not be null", nameof(choices)))).ToArray();
        Default = new double[FeatureSpaceDim];
    }

    /// <summary>A choice among <paramref name="choices"/> with a default.</summary>
    public ChoiceOption(object[] choices, object? defaultChoice)
        : this(choices)
    {
        if (defaultChoice != null)
            Default = MappingToFeatureSpace(Parameter.FromObject(defaultChoice));
    }

    /// <summary>The choices, in the order given.</summary>
    public Parameter[] Choices { get; }

    /// <inheritdoc/>
    public override int FeatureSpaceDim => Choices.Length == 1 ? 0 : 1;

    /// <inheritdoc/>
    public override int?[] Step => FeatureSpaceDim == 0 ? Array.Empty<int?>() : new int?[] { Choices.Length };

    /// <inheritdoc/>
    public override double[] MappingToFeatureSpace(Parameter param)
    {
        if (FeatureSpaceDim == 0)
            return Array.Empty<double>();
        int index = Array.IndexOf(Choices, param);
        if (index < 0)
            throw new ArgumentOutOfRangeException(nameof(param), $"{param} is not one of the choices");
        return new[] { (double)index / Choices.Length };
    }

    /// <inheritdoc/>
    public override Parameter SampleFromFeatureSpace(double[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length == 0)
            return Choices[0];
        double u = values[0];
        if (!(u >= 0 && u <= 1))
            throw new ArgumentOutOfRangeException(nameof(values), $"{u} must be between [0,1]");
        int index = Math.Min((int)Math.Floor((float)(u * Choices.Length)), Choices.Length - 1);
        return Choices[index];
    }
}
