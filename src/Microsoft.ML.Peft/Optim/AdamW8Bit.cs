using System.Runtime.CompilerServices;
using Microsoft.ML.Peft.Quantization;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Optim;

/// <summary>
/// AdamW (same update as <see cref="AdamW"/>) with memory-saving state storage chosen by
/// <see cref="AdamWStateStorage"/>: bitsandbytes-style 8-bit blockwise quantized moments (signed dynamic map for m,
/// unsigned for v, one absmax per block of 256 or 2048), and/or states paged through a memory-mapped temporary file.
/// </summary>
/// <remarks>
/// As in bitsandbytes, parameters with fewer than <c>minEightBitSize</c> elements (biases, norms) keep float32
/// states even in the 8-bit modes: their memory is negligible and 8-bit error would dominate. The float32 modes are
/// bit-identical to <see cref="AdamW"/>. Dispose the optimizer to delete the paged state file.
/// </remarks>
public sealed class AdamW8Bit : Optimizer, IDisposable
{
    private readonly ConditionalWeakTable<Tensor, State> states = [];
    private readonly PagedStateFile? paged;
    private readonly BlockwiseDynamicQuantizer signed;
    private readonly BlockwiseDynamicQuantizer unsigned;

    /// <summary>AdamW over plain parameters.</summary>
    /// <param name="parameters">The parameters.</param>
    /// <param name="storage">How the moments are stored; 8-bit in memory by default.</param>
    /// <param name="learningRate">Learning rate.</param>
    /// <param name="beta1">First-moment decay.</param>
    /// <param name="beta2">Second-moment decay.</param>
    /// <param name="eps">Denominator epsilon.</param>
    /// <param name="weightDecay">Decoupled weight decay.</param>
    /// <param name="blockSize">8-bit quantization block: 256 (bitsandbytes' current) or 2048 (its first releases).</param>
    /// <param name="minEightBitSize">Parameters smaller than this keep float32 states (bitsandbytes' min_8bit_size).</param>
    public AdamW8Bit(IEnumerable<Tensor> parameters, AdamWStateStorage storage = AdamWStateStorage.EightBit,
        double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01,
        int blockSize = 256, int minEightBitSize = 4096)
        : this([new ParameterGroup(parameters)], storage, learningRate, beta1, beta2, eps, weightDecay, blockSize, minEightBitSize)
    {
    }

    /// <summary>AdamW over parameter groups; see the other constructor for the arguments.</summary>
    public AdamW8Bit(IEnumerable<ParameterGroup> groups, AdamWStateStorage storage = AdamWStateStorage.EightBit,
        double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01,
        int blockSize = 256, int minEightBitSize = 4096)
        : base(groups, learningRate, weightDecay)
    {
        if (beta1 is < 0 or >= 1 || beta2 is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(beta1), "betas must be in [0, 1)");
        if (blockSize is not (256 or 2048)) throw new ArgumentOutOfRangeException(nameof(blockSize), $"8-bit optimizer block size {blockSize} is not 256 or 2048");
        ArgumentOutOfRangeException.ThrowIfNegative(minEightBitSize);
        if (!Enum.IsDefined(storage)) throw new ArgumentOutOfRangeException(nameof(storage), $"unknown state storage {storage}");
        Storage = storage;
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        BlockSize = blockSize;
        MinEightBitSize = minEightBitSize;
        signed = BlockwiseDynamicQuantizer.Signed(blockSize);
        unsigned = BlockwiseDynamicQuantizer.Unsigned(blockSize);
        if (storage is AdamWStateStorage.PagedFloat32 or AdamWStateStorage.PagedEightBit)
        {
            // Room for every float32 parameter in the groups (any may be unfrozen later); untouched pages cost nothing.
            long bytes = Parameters.Where(p => p.DType == DType.Float32).Sum(p => StateBytesFor(p.Count) + 256);
            paged = new PagedStateFile(bytes);
        }
    }

    /// <summary>The state storage.</summary>
    public AdamWStateStorage Storage { get; }

    /// <summary>First-moment decay.</summary>
    public double Beta1 { get; }

    /// <summary>Second-moment decay.</summary>
    public double Beta2 { get; }

    /// <summary>Denominator epsilon.</summary>
    public double Eps { get; }

    /// <summary>8-bit quantization block size.</summary>
    public int BlockSize { get; }

    /// <summary>Parameters with fewer elements keep float32 states.</summary>
    public int MinEightBitSize { get; }

    /// <summary>The paged state file, or null when states live in memory.</summary>
    public PagedStateFile? PagedFile => paged;

    /// <summary>Bytes of state allocated so far (in memory or in the paged file), excluding alignment padding.</summary>
    public long StateBytes { get; private set; }

    /// <summary>Whether <paramref name="parameter"/>'s states are (or will be) stored in 8 bits.</summary>
    public bool UsesEightBit(Tensor parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        return Storage is AdamWStateStorage.EightBit or AdamWStateStorage.PagedEightBit && parameter.Count >= MinEightBitSize;
    }

    /// <summary>
    /// Copies the (dequantized) moments of <paramref name="parameter"/> into the spans; returns false when it has no
    /// state yet. For checkpoints and tests.
    /// </summary>
    /// <exception cref="ArgumentException">A span's length differs from the parameter's element count.</exception>
    public bool TryGetState(Tensor parameter, Span<float> expAvg, Span<float> expAvgSq, out int step)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        step = 0;
        if (!states.TryGetValue(parameter, out var s)) return false;
        if (expAvg.Length != parameter.Count || expAvgSq.Length != parameter.Count)
            throw new ArgumentException($"TryGetState: spans of {expAvg.Length} and {expAvgSq.Length} values for parameter {parameter} of {parameter.Count}");
        s.Read(expAvg, expAvgSq, signed, unsigned);
        step = s.Step;
        return true;
    }

    /// <summary>
    /// Replaces the moments of <paramref name="parameter"/> (checkpoint resume): stored as this optimizer stores them,
    /// i.e. re-quantized in the 8-bit modes. Moments read back by <see cref="TryGetState"/> re-quantize to the same
    /// codes (each block's largest value decodes to exactly its absmax, so the absmax and every code come back), hence
    /// a resumed run continues as the uninterrupted one.
    /// </summary>
    /// <exception cref="ArgumentException">A span's length differs from the parameter's element count.</exception>
    public void SetState(Tensor parameter, ReadOnlySpan<float> expAvg, ReadOnlySpan<float> expAvgSq, int step)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        if (expAvg.Length != parameter.Count || expAvgSq.Length != parameter.Count)
            throw new ArgumentException($"optimizer state for {parameter} has {expAvg.Length}/{expAvgSq.Length} values, expected {parameter.Count}");
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        var s = states.GetValue(parameter, CreateState);
        s.Write(expAvg, expAvgSq, signed, unsigned);
        s.Step = step;
    }

    /// <summary>Deletes the paged state file (if any). The optimizer must not step afterwards.</summary>
    public void Dispose() => paged?.Dispose();

    private protected override unsafe void Update(Tensor parameter, Tensor grad, double learningRate, double weightDecay)
    {
        var s = states.GetValue(parameter, CreateState);
        s.Step++;
        var c = new AdamW8BitKernels.StepConstants(learningRate, weightDecay, Beta1, Beta2, Eps, s.Step);
        var p = parameter.AsSpan<float>();
        var g = grad.IsContiguous ? grad.AsReadOnlySpan<float>() : grad.Contiguous().AsReadOnlySpan<float>();
        if (s.EightBit)
            AdamW8BitKernels.UpdateEightBit(p, g, (byte*)s.M, (float*)s.MAbsmax, (byte*)s.V, (float*)s.VAbsmax, signed, unsigned, c);
        else
            AdamW8BitKernels.Update(p, g, new Span<float>((float*)s.M, p.Length), new Span<float>((float*)s.V, p.Length), c);
    }

    private long StateBytesFor(int count, bool? eightBit = null)
    {
        bool q = eightBit ?? Storage is AdamWStateStorage.EightBit or AdamWStateStorage.PagedEightBit && count >= MinEightBitSize;
        return q ? 2L * count + 8L * BlockwiseDynamicQuantizer.BlockCount(count, BlockSize) : 8L * count;
    }

    private unsafe State CreateState(Tensor parameter)
    {
        int n = parameter.Count;
        bool eightBit = UsesEightBit(parameter);
        int blocks = BlockwiseDynamicQuantizer.BlockCount(n, BlockSize);
        var s = new State(eightBit);
        if (eightBit)
        {
            s.M = Allocate(s, n);
            s.V = Allocate(s, n);
            s.MAbsmax = Allocate(s, 4L * blocks);
            s.VAbsmax = Allocate(s, 4L * blocks);
            // Zero state: absmax 0 and the code of 0 in each map (decodes to exactly 0).
            new Span<byte>((void*)s.M, n).Fill(signed.Encode(0f));
            new Span<byte>((void*)s.V, n).Fill(unsigned.Encode(0f));
        }
        else
        {
            s.M = Allocate(s, 4L * n);
            s.V = Allocate(s, 4L * n);
        }
        StateBytes += StateBytesFor(n, eightBit);
        return s;
    }

    /// <summary>A zeroed buffer: from the paged file, or a pinned array kept alive by the state.</summary>
    private unsafe nint Allocate(State s, long bytes)
    {
        if (paged is not null) return paged.Allocate(bytes);
        var array = GC.AllocateArray<byte>(checked((int)Math.Max(bytes, 1)), pinned: true);
        s.Keep(array);
        return (nint)Unsafe.AsPointer(ref array[0]);
    }

    /// <summary>One parameter's moments: float32 arrays or 8-bit codes plus per-block absmax, as raw addresses.</summary>
    private sealed class State(bool eightBit)
    {
        private readonly List<byte[]> owned = [];

        public bool EightBit { get; } = eightBit;

        public nint M { get; set; }

        public nint V { get; set; }

        public nint MAbsmax { get; set; }

        public nint VAbsmax { get; set; }

        public int Step { get; set; }

        public void Keep(byte[] array) => owned.Add(array);

        public unsafe void Write(ReadOnlySpan<float> m, ReadOnlySpan<float> v, BlockwiseDynamicQuantizer signed, BlockwiseDynamicQuantizer unsigned)
        {
            int n = m.Length;
            if (!EightBit)
            {
                m.CopyTo(new Span<float>((void*)M, n));
                v.CopyTo(new Span<float>((void*)V, n));
                return;
            }
            int blocks = BlockwiseDynamicQuantizer.BlockCount(n, signed.BlockSize);
            signed.Quantize(m, new Span<byte>((void*)M, n), new Span<float>((void*)MAbsmax, blocks));
            unsigned.Quantize(v, new Span<byte>((void*)V, n), new Span<float>((void*)VAbsmax, blocks));
        }

        public unsafe void Read(Span<float> m, Span<float> v, BlockwiseDynamicQuantizer signed, BlockwiseDynamicQuantizer unsigned)
        {
            int n = m.Length;
            if (!EightBit)
            {
                new Span<float>((void*)M, n).CopyTo(m);
                new Span<float>((void*)V, n).CopyTo(v);
                return;
            }
            int blocks = BlockwiseDynamicQuantizer.BlockCount(n, signed.BlockSize);
            signed.Dequantize(new Span<byte>((void*)M, n), new Span<float>((void*)MAbsmax, blocks), m);
            unsigned.Dequantize(new Span<byte>((void*)V, n), new Span<float>((void*)VAbsmax, blocks), v);
        }
    }
}
