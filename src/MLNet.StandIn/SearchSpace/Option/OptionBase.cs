namespace Microsoft.ML.SearchSpace.Option;

/// <summary>
/// A searchable option. Tuners work in a feature space [0, 1]^<see cref="FeatureSpaceDim"/>; the option maps feature
/// vectors to parameter values and back.
/// </summary>
public abstract class OptionBase
{
    /// <summary>The feature vector of <paramref name="value"/>.</summary>
    public abstract double[] MappingToFeatureSpace(Parameter value);

    /// <summary>The parameter value at feature vector <paramref name="values"/>.</summary>
    public abstract Parameter SampleFromFeatureSpace(double[] values);

    /// <summary>The number of feature dimensions.</summary>
    public abstract int FeatureSpaceDim { get; }

    /// <summary>The feature vector of the default value.</summary>
    public virtual double[]? Default { get; protected set; }

    /// <summary>Per feature dimension: the number of discrete values, or null for a continuous dimension.</summary>
    public abstract int?[] Step { get; }
}
