using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Training;

/// <summary>
/// SHA-256 over everything that determines a training trajectory: the settings, the tokenized data and labels, and
/// every parameter's name, shape and initial float32 value. A checkpoint only resumes a run with the same fingerprint.
/// </summary>
internal static class RunFingerprint
{
    public static string Compute(TrainingSettings settings, ISequenceClassifier model, int paddingId,
        IReadOnlyList<ClassificationExample> train, IReadOnlyList<ClassificationExample>? validation)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(TrainingSettings.Utf8(settings.TrajectoryKey()));
        AppendInt(hash, model.NumLabels);
        AppendInt(hash, paddingId);
        AppendExamples(hash, train);
        AppendInt(hash, validation?.Count ?? -1);
        if (validation is not null) AppendExamples(hash, validation);
        foreach (var (name, p) in model.Module.NamedParameters())
        {
            hash.AppendData(TrainingSettings.Utf8(name));
            foreach (int d in p.Shape) AppendInt(hash, d);
            AppendInt(hash, p.RequiresGrad ? 1 : 0);
            if (p.DType == DType.Float32) hash.AppendData(MemoryMarshal.AsBytes(p.IsContiguous ? p.AsReadOnlySpan<float>() : p.ToArray()));
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static void AppendExamples(IncrementalHash hash, IReadOnlyList<ClassificationExample> examples)
    {
        AppendInt(hash, examples.Count);
        foreach (var e in examples)
        {
            AppendInt(hash, e.Label);
            AppendInt(hash, e.TokenIds.Length);
            hash.AppendData(MemoryMarshal.AsBytes(e.TokenIds.AsSpan()));
            AppendInt(hash, e.TokenTypeIds?.Length ?? -1);
            if (e.TokenTypeIds is not null) hash.AppendData(MemoryMarshal.AsBytes(e.TokenTypeIds.AsSpan()));
        }
    }

    private static void AppendInt(IncrementalHash hash, int value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, value);
        hash.AppendData(bytes);
    }
}
