namespace Microsoft.ML.Peft.Tensors;

/// <summary>Random tensors, in-place initialisers and dropout; every draw comes from an explicit <see cref="Generator"/>.</summary>
public sealed unsafe partial class Tensor
{
    /// <summary>Uniform floats in [0, 1).</summary>
    public static Tensor Rand(Generator generator, params int[] shape) => Empty(shape).Uniform_(generator, 0f, 1f);

    /// <summary>Standard normal floats.</summary>
    public static Tensor Randn(Generator generator, params int[] shape) => Empty(shape).Normal_(generator, 0f, 1f);

    /// <summary>Fills with uniform floats in [low, high).</summary>
    public Tensor Uniform_(Generator generator, float low, float high)
    {
        ArgumentNullException.ThrowIfNull(generator);
        PrepareInPlace("uniform_");
        RequireContiguous("uniform_");
        long start = generator.Reserve(count);
        nint p = (nint)Ptr;
        ParallelHelper.For(count, 4, (s, e) => generator.FillUniformAt(new Span<float>((float*)p + s, e - s), start + s, low, high));
        return this;
    }

    /// <summary>Fills with normal floats N(mean, std²).</summary>
    public Tensor Normal_(Generator generator, float mean, float std)
    {
        ArgumentNullException.ThrowIfNull(generator);
        PrepareInPlace("normal_");
        RequireContiguous("normal_");
        long start = generator.Reserve(count);
        nint p = (nint)Ptr;
        ParallelHelper.For(count, 16, (s, e) => generator.FillNormalAt(new Span<float>((float*)p + s, e - s), start + s, mean, std));
        return this;
    }

    /// <summary>
    /// Kaiming-uniform initialisation as torch.nn.init.kaiming_uniform_ (fan_in mode, leaky-ReLU gain):
    /// U(−b, b) with b = √(2/(1+a²))·√(3/fan_in), fan_in = size(1)·(product of dims ≥ 2). The default a = √5 is
    /// what nn.Linear uses, giving b = 1/√fan_in.
    /// </summary>
    public Tensor KaimingUniform_(Generator generator, double a = 2.23606797749979)
    {
        if (Rank < 2) throw new ArgumentException($"kaiming_uniform_: {Describe} needs at least 2 dimensions to compute fan_in");
        long fanIn = shape[1];
        for (int i = 2; i < Rank; i++) fanIn *= shape[i];
        double gain = Math.Sqrt(2.0 / (1 + a * a));
        float bound = (float)(gain * Math.Sqrt(3.0 / fanIn));
        return Uniform_(generator, -bound, bound);
    }

    /// <summary>
    /// Inverted dropout: zeroes each element with probability <paramref name="p"/> and scales survivors by 1/(1−p).
    /// The identity when <paramref name="training"/> is false or p = 0. The mask comes from
    /// <paramref name="generator"/> (element i keeps when its uniform draw is ≥ p), so runs are reproducible.
    /// </summary>
    public Tensor Dropout(float p, Generator generator, bool training = true)
    {
        if (p is < 0f or > 1f || float.IsNaN(p)) throw new ArgumentOutOfRangeException(nameof(p), $"dropout: probability {p} is not in [0, 1]");
        if (!training || p == 0f) return this;
        ArgumentNullException.ThrowIfNull(generator);
        RequireFloat32("dropout");
        var mask = NewOutput(shape, "dropout_mask");
        long start = generator.Reserve(count);
        float scale = p == 1f ? 0f : 1f / (1f - p);
        nint pm = (nint)mask.Ptr;
        ParallelHelper.For(count, 4, (s, e) =>
        {
            float* m = (float*)pm;
            for (int i = s; i < e; i++) m[i] = generator.UniformAt(start + i) >= p ? scale : 0f;
        });
        var y = Binary<MultiplyOperator>(this, mask, "dropout");
        if (Autograd.ShouldRecord(this))
        {
            var node = Autograd.Record("dropout", y, [this], (node, g) => node.AccumulateGrad(0, g.Mul(mask)));
            node.SaveForBackward(mask);
        }
        return Autograd.Checked(y, this);
    }

    private void RequireContiguous(string op)
    {
        if (!IsContiguous) throw new NotSupportedException($"{op}: {Describe} must be contiguous");
    }
}
