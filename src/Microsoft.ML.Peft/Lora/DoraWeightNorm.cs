using System.Buffers;
using Tensor = Microsoft.ML.Peft.Tensors.Tensor;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Microsoft.ML.Peft.Kernels;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Lora;

/// <summary>
/// DoRA's detached row norm ‖W + s·B·A‖ [out], computed with one [out, in] buffer and remembered for the exact
/// tensors it came from, so inference and generation (where W, A, B never change) pay the out×r×in product once
/// instead of at every forward.
/// </summary>
/// <remarks>
/// <para>
/// The norm is computed as C = W (copied), C += s·B·A by one GEMM with β = 1 (the scaling rides on α, so there is no
/// separate B·A product, no [out, in] scaling pass and no squared copy), then each row's Euclidean norm with
/// <see cref="TensorPrimitives.Norm(ReadOnlySpan{float})"/>. The buffer comes from the shared array pool.
/// </para>
/// <para>
/// Cache validity: the entry records the storage of W, A, B (and the MoSLoRA mixer) together with each storage's
/// <see cref="TensorStorage.Version"/>, which every in-place write (optimizer steps, <c>CopyFrom_</c>, merges that add
/// in place) increments, and <see cref="Tensor.Storage"/> changes when a parameter is replaced. Any difference is a
/// miss and the norm is recomputed. Hits happen in inference and also in training between two optimizer steps
/// (gradient accumulation), where recomputing would give the same numbers. The norm is never recorded by autograd
/// (DoRA detaches it), so sharing one tensor between forwards is safe.
/// </para>
/// </remarks>
internal sealed class DoraWeightNorm
{
    private readonly (TensorStorage? Storage, int Offset, int Version)[] key = new (TensorStorage?, int, int)[4];
    private float keyScaling = float.NaN;
    private Tensor? norm;

    /// <summary>How many times the norm was computed (for tests: a cache hit leaves it unchanged).</summary>
    public int Computations { get; private set; }

    /// <summary>
    /// ‖W + s·B·M·A‖ per output row (M = I without a mixer), from the cache when none of the inputs changed.
    /// <paramref name="denseWeight"/> is W as [out, in] (any strides, any float dtype).
    /// </summary>
    public Tensor Get(Tensor denseWeight, Tensor loraA, Tensor loraB, Tensor? mixer, float scaling)
    {
        if (norm is not null && Matches(denseWeight, loraA, loraB, mixer, scaling)) return norm;
        Tensor effectiveB;
        using (Autograd.NoGrad()) effectiveB = mixer is null ? loraB : loraB.MatMul(mixer);
        var fresh = Compute(denseWeight, loraA, effectiveB, scaling);
        Remember(denseWeight, loraA, loraB, mixer, scaling);
        norm = fresh;
        Computations++;
        return fresh;
    }

    /// <summary>Forgets the cached norm (and the tensors it holds on to), e.g. when the base weight is replaced by a merge.</summary>
    public void Clear()
    {
        norm = null;
        Array.Clear(key);
        keyScaling = float.NaN;
    }

    /// <summary>
    /// ‖W + s·B·A‖ per output row, computed afresh ([out], float32, not recorded). <paramref name="baseWeight"/> is
    /// [out, in] with any strides and float dtype; <paramref name="loraA"/> [r, in], <paramref name="loraB"/> [out, r].
    /// </summary>
    public static Tensor Compute(Tensor baseWeight, Tensor loraA, Tensor loraB, float scaling)
    {
        ArgumentNullException.ThrowIfNull(baseWeight);
        ArgumentNullException.ThrowIfNull(loraA);
        ArgumentNullException.ThrowIfNull(loraB);
        int rows = baseWeight.Size(0), cols = baseWeight.Size(1), rank = loraA.Size(0);
        if (loraA.Size(1) != cols || loraB.Size(0) != rows || loraB.Size(1) != rank)
            throw new ArgumentException($"DoRA norm: W {baseWeight}, A {loraA} and B {loraB} do not form [out, in] = [out, r]·[r, in]");
        var norms = new float[rows];
        float[] buffer = ArrayPool<float>.Shared.Rent(rows * cols);
        try
        {
            var adapted = buffer.AsSpan(0, rows * cols);
            using (Autograd.NoGrad())
            {
                var w = baseWeight.DType == DType.Float32 && baseWeight.IsContiguous ? baseWeight : baseWeight.To(DType.Float32).Contiguous();
                w.AsReadOnlySpan<float>().CopyTo(adapted);
                var a = loraA.IsContiguous ? loraA : loraA.Contiguous();
                var b = loraB.IsContiguous ? loraB : loraB.Contiguous();
                Gemm.Sgemm(false, false, rows, cols, rank, scaling, b.AsReadOnlySpan<float>(), rank, a.AsReadOnlySpan<float>(), cols, 1f, adapted, cols);
            }
            for (int r = 0; r < rows; r++) norms[r] = TensorPrimitives.Norm((ReadOnlySpan<float>)adapted.Slice(r * cols, cols));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buffer);
        }
        using (TensorScope.Untracked()) return Tensor.From(norms, rows);
    }

    private bool Matches(Tensor w, Tensor a, Tensor b, Tensor? mixer, float scaling) =>
        scaling.Equals(keyScaling) && Same(0, w) && Same(1, a) && Same(2, b) && Same(3, mixer);

    private bool Same(int slot, Tensor? t) => t is null
        ? key[slot].Storage is null
        : ReferenceEquals(key[slot].Storage, t.Storage) && key[slot].Offset == t.Offset && key[slot].Version == t.Storage.Version;

    private void Remember(Tensor w, Tensor a, Tensor b, Tensor? mixer, float scaling)
    {
        key[0] = Entry(w);
        key[1] = Entry(a);
        key[2] = Entry(b);
        key[3] = Entry(mixer);
        keyScaling = scaling;
    }

    private static (TensorStorage?, int, int) Entry(Tensor? t) => t is null ? (null, 0, 0) : (t.Storage, t.Offset, t.Storage.Version);
}
