namespace Microsoft.ML.Peft.Tensors;

/// <summary>How the rotated pairs of a head vector are laid out.</summary>
public enum RotaryLayout
{
    /// <summary>Hugging Face "rotate_half": pairs (i, i + R/2) — Llama, Mistral, Qwen, GPT-NeoX in HF checkpoints.</summary>
    RotateHalf,

    /// <summary>Adjacent pairs (2i, 2i + 1) — Meta's original Llama, GPT-J.</summary>
    Interleaved,
}

/// <summary>Rotary position embedding (RoPE), fused: reads strided [B, H, T, D] views and writes a contiguous result.</summary>
public sealed unsafe partial class Tensor
{
    /// <summary>
    /// Rotates each head vector of this [batch, heads, seq, headDim] tensor by position-dependent angles: pair i of the
    /// first R dimensions becomes (a·cos − b·sin, b·cos + a·sin) with cos/sin taken from the tables at the token's
    /// position; dimensions from R on pass through (partial rotary). <paramref name="cos"/> and <paramref name="sin"/>
    /// are float32 [maxPositions, R/2] (one column per frequency, see <see cref="RotaryTables"/>).
    /// <paramref name="positionIds"/> is int32 [batch, seq] or [seq], or null for 0..seq−1.
    /// The output is contiguous; the input may be any view whose last dimension has stride 1 (e.g. a transposed
    /// projection), which saves the copy the transpose would otherwise need.
    /// </summary>
    public Tensor ApplyRotary(Tensor cos, Tensor sin, Tensor? positionIds = null, RotaryLayout layout = RotaryLayout.RotateHalf)
    {
        ArgumentNullException.ThrowIfNull(cos);
        ArgumentNullException.ThrowIfNull(sin);
        const string op = "rotary";
        RequireFloat32(op);
        if (Rank != 4) throw new ArgumentException($"{op}: input {Describe} must be [batch, heads, seq, headDim]");
        int b = shape[0], h = shape[1], t = shape[2], d = shape[3];
        cos.RequireFloat32(op);
        sin.RequireFloat32(op);
        if (cos.Rank != 2 || !cos.Shape.SequenceEqual(sin.Shape))
            throw new ArgumentException($"{op}: cos {cos.Describe} and sin {sin.Describe} must both be [maxPositions, rotaryDim/2]");
        if (cos.RequiresGrad || sin.RequiresGrad) throw new NotSupportedException($"{op}: gradients with respect to the cos/sin tables are not supported");
        int half = cos.shape[1];
        if (2 * half > d) throw new ArgumentException($"{op}: tables {cos.Describe} rotate {2 * half} dimensions but heads of {Describe} have {d}");
        var pos = ResolvePositions(positionIds, b, t, cos.shape[0], op);
        var c = cos.IsContiguous ? cos : cos.ContiguousCopy();
        var s = sin.IsContiguous ? sin : sin.ContiguousCopy();
        var x = strides[3] == 1 ? this : ContiguousCopy();
        var y = NewOutput(shape, op);
        RotaryKernel.Run(x, y, c.Ptr, s.Ptr, pos, half, layout, inverse: false);
        if (Autograd.ShouldRecord(this))
        {
            var node = Autograd.Record(op, y, [this], (node, g) =>
            {
                var gx = g.strides[3] == 1 ? g : g.ContiguousCopy();
                var dx = NewOutput(g.shape, op + "_backward");
                RotaryKernel.Run(gx, dx, c.Ptr, s.Ptr, pos, half, layout, inverse: true);
                node.AccumulateGrad(0, dx);
            });
            node.SaveForBackward(c, s, pos);
        }
        return Autograd.Checked(y, this);
    }

    /// <summary>Position ids as a contiguous int32 [batch, seq] tensor, validated against the table length.</summary>
    private static Tensor ResolvePositions(Tensor? positionIds, int b, int t, int maxPositions, string op)
    {
        Tensor pos;
        if (positionIds is null)
        {
            if (t > maxPositions) throw new ArgumentException($"{op}: sequence length {t} exceeds the {maxPositions} positions of the tables");
            pos = Arange(t, DType.Int32).View([b, t], [0, 1], 0, "positions");
        }
        else
        {
            if (positionIds.DType != DType.Int32) throw new ArgumentException($"{op}: position ids {positionIds.Describe} must be int32");
            if (positionIds.Rank == 1 && positionIds.shape[0] == t) pos = positionIds.View([b, t], [0, positionIds.strides[0]], positionIds.offset, "positions");
            else if (positionIds.Rank == 2 && positionIds.shape[1] == t && (positionIds.shape[0] == b || positionIds.shape[0] == 1))
                pos = positionIds.View([b, t], [positionIds.shape[0] == 1 ? 0 : positionIds.strides[0], positionIds.strides[1]], positionIds.offset, "positions");
            else throw new ArgumentException($"{op}: position ids {positionIds.Describe} must be [{b}, {t}] or [{t}]");
        }
        pos = pos.ContiguousCopy("positions");
        int* p = pos.PtrAs<int>();
        for (int i = 0; i < pos.count; i++)
        {
            if ((uint)p[i] >= (uint)maxPositions)
                throw new ArgumentOutOfRangeException(nameof(positionIds), $"{op}: position {p[i]} at index {i} is outside the {maxPositions} rows of the cos/sin tables");
        }
        return pos;
    }
}

/// <summary>The rotation itself: per (batch, head, token), rotate R/2 pairs; inverse rotates by −θ (the backward).</summary>
internal static unsafe class RotaryKernel
{
    public static void Run(Tensor x, Tensor y, float* cos, float* sin, Tensor positions, int half, RotaryLayout layout, bool inverse)
    {
        int b = x.ShapeRef[0], h = x.ShapeRef[1], t = x.ShapeRef[2], d = x.ShapeRef[3];
        int xs0 = x.StridesRef[0], xs1 = x.StridesRef[1], xs2 = x.StridesRef[2];
        nint px = (nint)x.Ptr, py = (nint)y.Ptr, pc = (nint)cos, ps = (nint)sin, pp = (nint)positions.PtrAs<int>();
        float sign = inverse ? -1f : 1f;
        ParallelHelper.For(b * h, (long)t * d, (r0, r1) =>
        {
            for (int bh = r0; bh < r1; bh++)
            {
                int bi = bh / h, hi = bh % h;
                for (int ti = 0; ti < t; ti++)
                {
                    float* src = (float*)px + (long)bi * xs0 + (long)hi * xs1 + (long)ti * xs2;
                    float* dst = (float*)py + (((long)bi * h + hi) * t + ti) * d;
                    int p = ((int*)pp)[bi * t + ti];
                    float* c = (float*)pc + (long)p * half, s = (float*)ps + (long)p * half;
                    for (int i = 0; i < half; i++)
                    {
                        int ia = layout == RotaryLayout.RotateHalf ? i : 2 * i;
                        int ib = layout == RotaryLayout.RotateHalf ? i + half : 2 * i + 1;
                        float a = src[ia], bb = src[ib], ci = c[i], si = sign * s[i];
                        dst[ia] = a * ci - bb * si;
                        dst[ib] = bb * ci + a * si;
                    }
                    for (int i = 2 * half; i < d; i++) dst[i] = src[i];
                }
            }
        });
    }
}
