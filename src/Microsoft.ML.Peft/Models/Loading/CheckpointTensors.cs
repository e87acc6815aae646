using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Loading;

/// <summary>Turns checkpoint tensors (<see cref="TensorView"/>) into engine tensors, zero-copy wherever the dtype allows.</summary>
internal static class CheckpointTensors
{
    /// <summary>Whether a checkpoint dtype can hold weights (floats; integers are quantized payloads or indices).</summary>
    public static bool IsFloat(CheckpointDType dtype) =>
        dtype is CheckpointDType.F32 or CheckpointDType.F16 or CheckpointDType.BF16 or CheckpointDType.F64
            or CheckpointDType.F8E4M3 or CheckpointDType.F8E5M2;

    /// <summary>
    /// An engine tensor over <paramref name="view"/>: F32 is viewed in place (the checkpoint's memory becomes the
    /// parameter); BF16/F16 are viewed in place as frozen storage when <paramref name="keepHalfPrecision"/>; anything
    /// else is converted into a new float32 tensor. <paramref name="owner"/> (the open checkpoint) is kept alive by
    /// the storage for as long as any view of it exists.
    /// </summary>
    public static Tensor ToEngine(TensorView view, bool keepHalfPrecision, object owner, out bool zeroCopy)
    {
        int[] shape = view.Shape.ToArray();
        DType? inPlace = view.DType switch
        {
            CheckpointDType.F32 => DType.Float32,
            CheckpointDType.BF16 when keepHalfPrecision => DType.BFloat16,
            CheckpointDType.F16 when keepHalfPrecision => DType.Float16,
            _ => null,
        };
        zeroCopy = inPlace is not null && view.ElementCount > 0;
        if (zeroCopy)
        {
            var storage = new ExternalStorage(view.DataPointer, checked((int)view.ElementCount), inPlace!.Value, owner);
            return Tensor.FromStorage(storage, shape);
        }
        using (TensorScope.Untracked())
        {
            var t = Tensor.Empty(shape);
            view.CopyToFloat32(t.AsSpan<float>());
            return t;
        }
    }
}
