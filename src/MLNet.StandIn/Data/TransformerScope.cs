namespace Microsoft.ML.Data;

/// <summary>The stages of a model's life in which a transformer of a chain applies.</summary>
[Flags]
public enum TransformerScope
{
    /// <summary>Never.</summary>
    None = 0,

    /// <summary>While training.</summary>
    Training = 1 << 0,

    /// <summary>While testing (evaluation).</summary>
    Testing = 1 << 1,

    /// <summary>While scoring (prediction).</summary>
    Scoring = 1 << 2,

    /// <summary>Training and testing.</summary>
    TrainTest = Training | Testing,

    /// <summary>Always.</summary>
    Everything = Training | Testing | Scoring,
}
