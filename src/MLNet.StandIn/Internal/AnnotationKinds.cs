namespace Microsoft.ML.Internal;

/// <summary>ML.NET's annotation kind and value strings (internal in ML.NET, so extensions must use the literals).</summary>
internal static class AnnotationKinds
{
    public const string KeyValues = "KeyValues";
    public const string SlotNames = "SlotNames";
    public const string ScoreColumnKind = "ScoreColumnKind";
    public const string ScoreValueKind = "ScoreValueKind";
    public const string ScoreColumnSetId = "ScoreColumnSetId";
    public const string TrainingLabelValues = "TrainingLabelValues";
    public const string IsNormalized = "IsNormalized";
    public const string CategoricalSlotRanges = "CategoricalSlotRanges";
}
