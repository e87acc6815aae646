using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.NN;

/// <summary>Token embedding table [vocab, dim], as torch.nn.Embedding (weight may be frozen bfloat16/float16).</summary>
public sealed class Embedding : Module
{
    private readonly Parameter weight;

    /// <summary>Initialised N(0, 1) as PyTorch (padding row zeroed), drawn from <paramref name="generator"/>.</summary>
    public Embedding(int count, int dim, Generator generator, int? paddingIndex = null)
    {
        ArgumentNullException.ThrowIfNull(generator);
        Tensor w;
        using (TensorScope.Untracked()) w = Tensor.Randn(generator, count, dim);
        if (paddingIndex is { } pad) w.Narrow(0, pad, 1).Zero_();
        weight = RegisterParameter("weight", w);
        PaddingIndex = paddingIndex;
    }

    /// <summary>An embedding over an existing table.</summary>
    public Embedding(Tensor weight, int? paddingIndex = null)
    {
        ArgumentNullException.ThrowIfNull(weight);
        this.weight = RegisterParameter("weight", weight);
        PaddingIndex = paddingIndex;
    }

    /// <summary>The table [vocab, dim].</summary>
    public Tensor Weight => weight.Value;

    /// <summary>Row that receives no gradient (PyTorch padding_idx), or null.</summary>
    public int? PaddingIndex { get; }

    /// <summary>Rows for int32 ids of any shape → [..ids, dim].</summary>
    public Tensor Forward(Tensor ids) => Weight.Embedding(ids, PaddingIndex);
}

/// <summary>Layer normalisation over the last dimension, as torch.nn.LayerNorm (weight ones, bias zeros).</summary>
public sealed class LayerNorm : Module
{
    private readonly Parameter? weight;
    private readonly Parameter? bias;

    /// <summary>A layer norm over <paramref name="dim"/> features.</summary>
    public LayerNorm(int dim, float eps = 1e-5f, bool elementwiseAffine = true, bool hasBias = true)
    {
        Eps = eps;
        if (!elementwiseAffine) return;
        using (TensorScope.Untracked())
        {
            weight = RegisterParameter("weight", Tensor.Ones(dim));
            if (hasBias) bias = RegisterParameter("bias", Tensor.Zeros(dim));
        }
    }

    /// <summary>The epsilon added to the variance.</summary>
    public float Eps { get; }

    /// <summary>Scale [dim], or null.</summary>
    public Tensor? Weight => weight?.Value;

    /// <summary>Shift [dim], or null.</summary>
    public Tensor? Bias => bias?.Value;

    /// <summary>Normalises the last dimension.</summary>
    public Tensor Forward(Tensor input) => input.LayerNorm(Weight, Bias, Eps);
}

/// <summary>Root-mean-square normalisation as Hugging Face's LlamaRMSNorm (weight ones).</summary>
public sealed class RMSNorm : Module
{
    private readonly Parameter weight;

    /// <summary>An RMS norm over <paramref name="dim"/> features.</summary>
    public RMSNorm(int dim, float eps = 1e-6f)
    {
        Eps = eps;
        using (TensorScope.Untracked()) weight = RegisterParameter("weight", Tensor.Ones(dim));
    }

    /// <summary>The epsilon added to the mean square.</summary>
    public float Eps { get; }

    /// <summary>Scale [dim].</summary>
    public Tensor Weight => weight.Value;

    /// <summary>Normalises the last dimension.</summary>
    public Tensor Forward(Tensor input) => input.RmsNorm(Weight, Eps);
}

/// <summary>Inverted dropout, active only in training mode; masks come from its own seeded generator.</summary>
public sealed class Dropout : Module
{
    private readonly Generator generator;

    /// <summary>Dropout with probability <paramref name="p"/>.</summary>
    public Dropout(float p, Generator generator)
    {
        if (p is < 0f or > 1f) throw new ArgumentOutOfRangeException(nameof(p), $"dropout probability {p} is not in [0, 1]");
        ArgumentNullException.ThrowIfNull(generator);
        P = p;
        this.generator = generator;
    }

    /// <summary>Drop probability.</summary>
    public float P { get; }

    /// <summary>The stream the masks are drawn from (gradient checkpointing rewinds it to replay them).</summary>
    internal Generator Generator => generator;

    /// <summary>Applies dropout when training, otherwise returns the input.</summary>
    public Tensor Forward(Tensor input) => input.Dropout(P, generator, IsTraining);
}

/// <summary>An indexable list of child modules named "0", "1", ... (torch.nn.ModuleList).</summary>
public sealed class ModuleList<T> : Module where T : Module
{
    private readonly List<ModuleSlot<T>> items = [];

    /// <summary>An empty list.</summary>
    public ModuleList()
    {
    }

    /// <summary>A list of the given modules.</summary>
    public ModuleList(IEnumerable<T> modules)
    {
        ArgumentNullException.ThrowIfNull(modules);
        foreach (var m in modules) Add(m);
    }

    /// <summary>Number of modules.</summary>
    public int Count => items.Count;

    /// <summary>The current module at <paramref name="index"/> (reflects replacements).</summary>
    public T this[int index] => items[index].Module;

    /// <summary>Appends a module named by its index.</summary>
    public void Add(T module) => items.Add(RegisterModule(items.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module));
}
