using Microsoft.ML.Runtime;

namespace Microsoft.ML;

/// <summary>
/// The entry point of ML.NET: catalogs of data operations, transforms, trainers, evaluators and model operations,
/// a log event, and the random seed that makes shuffles, splits and trainers repeatable.
/// </summary>
public sealed class MLContext : IHostEnvironment
{
    private readonly Random _random;
    private readonly object _randomLock = new();
    private readonly Dictionary<string, object?> _options = new(StringComparer.Ordinal);

    /// <summary>Creates a context; a fixed <paramref name="seed"/> makes every random operation repeatable, null makes it non-deterministic.</summary>
    public MLContext(int? seed = null)
    {
        Seed = seed;
        _random = seed.HasValue ? new Random(seed.Value) : new Random();
        ComponentCatalog = new ComponentCatalog();
        Data = new DataOperationsCatalog(this);
        Transforms = new TransformsCatalog(this);
        Model = new ModelOperationsCatalog(this);
        MulticlassClassification = new MulticlassClassificationCatalog(this);
        BinaryClassification = new BinaryClassificationCatalog(this);
        Regression = new RegressionCatalog(this);
    }

    /// <summary>Binary classification trainers, calibrators and evaluation.</summary>
    public BinaryClassificationCatalog BinaryClassification { get; }

    /// <summary>Multiclass classification trainers and evaluation.</summary>
    public MulticlassClassificationCatalog MulticlassClassification { get; }

    /// <summary>Regression trainers and evaluation.</summary>
    public RegressionCatalog Regression { get; }

    /// <summary>Data transformations.</summary>
    public TransformsCatalog Transforms { get; }

    /// <summary>Saving, loading and prediction engines.</summary>
    public ModelOperationsCatalog Model { get; }

    /// <summary>Loading, saving, splitting and shuffling data.</summary>
    public DataOperationsCatalog Data { get; }

    /// <summary>Raised for every log message of the components created from this context.</summary>
    public event EventHandler<LoggingEventArgs>? Log;

    /// <summary>The catalog of extensions (see <see cref="ComponentCatalog.RegisterAssembly"/>).</summary>
    public ComponentCatalog ComponentCatalog { get; }

    /// <summary>The folder for temporary files.</summary>
    public string TempFilePath { get; set; } = Path.GetTempPath();

    /// <summary>Whether GPU trainers fall back to the CPU when no GPU is available.</summary>
    public bool FallbackToCpu { get; set; }

    /// <summary>The GPU device to use, or null for the CPU.</summary>
    public int? GpuDeviceId { get; set; }

    /// <summary>Adds an option unless one of that name exists; returns whether it was added.</summary>
    public bool TryAddOption<T>(string name, T value)
    {
        lock (_options)
            return _options.TryAdd(name, value);
    }

    /// <summary>Sets an option.</summary>
    public void SetOption<T>(string name, T value)
    {
        lock (_options)
            _options[name] = value;
    }

    /// <summary>Reads an option of type <typeparamref name="T"/>.</summary>
    public bool TryGetOption<T>(string name, out T value)
    {
        lock (_options)
        {
            if (_options.TryGetValue(name, out var stored) && stored is T typed)
            {
                value = typed;
                return true;
            }
        }
        value = default!;
        return false;
    }

    /// <summary>Reads an option, or default when absent.</summary>
    public T GetOptionOrDefault<T>(string name) => TryGetOption<T>(name, out var value) ? value : default!;

    /// <summary>Removes an option; returns whether it existed.</summary>
    public bool RemoveOption(string name)
    {
        lock (_options)
            return _options.Remove(name);
    }

    IHost IHostEnvironment.Register(string name, int? seed, bool? verbose)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return new Host(this, name, seed ?? NextSeed());
    }

    /// <summary>The seed given to the constructor.</summary>
    internal int? Seed { get; }

    /// <summary>The next value of the context's random sequence (repeatable when the context is seeded).</summary>
    internal int NextSeed()
    {
        lock (_randomLock)
            return _random.Next();
    }

    /// <summary>Raises <see cref="Log"/>.</summary>
    internal void WriteLog(ChannelMessageKind kind, string source, string message)
        => Log?.Invoke(this, new LoggingEventArgs(message, kind, source));

    private sealed class Host : IHost
    {
        private readonly MLContext _context;
        private readonly string _name;

        public Host(MLContext context, string name, int seed)
        {
            _context = context;
            _name = name;
            Rand = new Random(seed);
        }

        public Random Rand { get; }

        public ComponentCatalog ComponentCatalog => _context.ComponentCatalog;

        public IHost Register(string name, int? seed = null, bool? verbose = null)
            => new Host(_context, _name + "/" + name, seed ?? Rand.Next());
    }
}
