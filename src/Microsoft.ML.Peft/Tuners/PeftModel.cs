using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tuners;

/// <summary>
/// A model with PEFT adapters (PEFT's <c>PeftModel</c> + <c>BaseTuner</c>): the method's layers are put into the
/// given module tree in place, the base model is frozen, and this object manages named adapters — which is active,
/// disabling them, merging, saving and loading in PEFT's file format.
/// </summary>
/// <remarks>
/// <para>Typical use: <c>var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "q_proj", "v_proj" } });</c>
/// then train <c>peft.TrainableParameters()</c> with the model's own forward, and <c>peft.SavePretrained(dir)</c>.</para>
/// <para>Parameter names follow PEFT's in-memory layout ("...q_proj.base_layer.weight",
/// "...q_proj.lora_A.default.weight"); saved files use PEFT's key format ("base_model.model.…q_proj.lora_A.weight").</para>
/// </remarks>
public sealed partial class PeftModel
{
    private readonly Dictionary<string, PeftConfig> configs = new(StringComparer.Ordinal);
    private readonly List<string> adapterOrder = [];
    private readonly Dictionary<string, List<string>> targetedModules = new(StringComparer.Ordinal);
    private readonly ModulesToSave modulesToSave = new();
    private readonly Generator generator;
    private List<string> active = [];
    private bool enabled = true;
    private bool unloaded;

    private PeftModel(Module model, Generator generator)
    {
        Model = model;
        this.generator = generator;
    }

    /// <summary>The model with adapter layers inside (modified in place; PEFT's <c>base_model.model</c>).</summary>
    public Module Model { get; }

    /// <summary>Adapter names in the order they were added.</summary>
    public IReadOnlyList<string> AdapterNames => adapterOrder;

    /// <summary>The configuration of each adapter.</summary>
    public IReadOnlyDictionary<string, PeftConfig> PeftConfigs => configs;

    /// <summary>The adapters used in the forward pass (usually one).</summary>
    public IReadOnlyList<string> ActiveAdapters => active;

    /// <summary>The active adapter (the first when several are active).</summary>
    public string ActiveAdapter => active.Count > 0 ? active[0] : throw new InvalidOperationException("no adapter is active");

    /// <summary>The configuration of <see cref="ActiveAdapter"/>.</summary>
    public PeftConfig ActiveConfig => configs[ActiveAdapter];

    /// <summary>False inside <see cref="DisableAdapters"/>.</summary>
    public bool AdaptersEnabled => enabled;

    /// <summary>Dotted names of the modules an adapter was put into.</summary>
    public IReadOnlyList<string> TargetedModuleNames(string adapterName = "default") =>
        targetedModules.TryGetValue(adapterName, out var names) ? names : throw UnknownAdapter(adapterName);

    /// <summary>Every adapter layer with its dotted path.</summary>
    public IEnumerable<(string Path, ITunerLayer Layer)> TunerLayers() =>
        Model.NamedModules().Where(m => m.Module is ITunerLayer).Select(m => (m.Name, (ITunerLayer)m.Module));

    /// <summary>
    /// Adds adapter <paramref name="adapterName"/> described by <paramref name="config"/> to <paramref name="model"/>
    /// (PEFT's <c>get_peft_model</c>): freezes every base parameter, puts the method's layers into the targeted
    /// modules, makes the adapter's parameters trainable (plus biases and modules_to_save copies per config, unless
    /// <see cref="PeftConfig.InferenceMode"/>), and activates it. Random initialisation draws from
    /// <paramref name="generator"/> (default: seed 0), which LoRA dropout also uses.
    /// </summary>
    /// <exception cref="PeftConfigException">The config is invalid or its targets match nothing (the message lists the model's linear layers).</exception>
    public static PeftModel Inject(Module model, PeftConfig config, string adapterName = "default", Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        if (model.NamedModules().Any(m => m.Module is ITunerLayer))
            throw new InvalidOperationException("the model already carries adapter layers; add further adapters through its PeftModel (AddAdapter)");
        var peft = new PeftModel(model, generator ?? new Generator(0));
        peft.AddAdapterCore(adapterName, config);
        // Freeze the base only once injection has succeeded (a bad config leaves the model untouched); activating
        // the adapter then unfreezes exactly what it trains.
        model.SetRequiresGrad(false);
        peft.SetAdapter(adapterName);
        return peft;
    }

    /// <summary>
    /// Adds another adapter (PEFT's <c>add_adapter</c>); it is created frozen and not active — call
    /// <see cref="SetAdapter(string)"/> to train or use it.
    /// </summary>
    public void AddAdapter(string adapterName, PeftConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        CheckUsable();
        AddAdapterCore(adapterName, config);
        SetAdapters(active);
    }

    /// <summary>Makes <paramref name="adapterName"/> the only active adapter (PEFT's <c>set_adapter</c>); unmerges merged layers first.</summary>
    public void SetAdapter(string adapterName) => SetAdapters([adapterName]);

    /// <summary>
    /// Activates several adapters at once (their updates add up). Active adapters are trainable unless their config
    /// is in inference mode; all others are frozen. Each module in modules_to_save can follow only one adapter.
    /// </summary>
    public void SetAdapters(IReadOnlyList<string> adapterNames)
    {
        ArgumentNullException.ThrowIfNull(adapterNames);
        CheckUsable();
        if (adapterNames.Count == 0) throw new ArgumentException("at least one adapter must be active", nameof(adapterNames));
        foreach (var name in adapterNames)
        {
            if (!configs.ContainsKey(name)) throw UnknownAdapter(name);
        }
        var withSavedModules = adapterNames.Where(n => configs[n].ModulesToSave is { Count: > 0 }).ToList();
        if (withSavedModules.Count > 1)
            throw new InvalidOperationException($"adapters [{string.Join(", ", withSavedModules)}] all have modules_to_save; only one of them can be active at a time");

        active = adapterNames.ToList();
        foreach (var (_, layer) in TunerLayers())
        {
            layer.SetActiveAdapters(active, trainable: true, ignoreMissing: true);
            foreach (var name in active.Where(n => configs[n].InferenceMode && layer.AdapterNames.Contains(n))) layer.SetAdapterTrainable(name, false);
        }
        ApplyExtraTrainables();
        if (enabled) ActivateModulesToSave();
    }

    /// <summary>
    /// Runs the base model without adapters until the returned scope is disposed (PEFT's <c>disable_adapter()</c>
    /// context): adapter layers compute their base layer only, modules_to_save use their original values, and adapter
    /// parameters are frozen. Merged layers are unmerged first, as PEFT does.
    /// </summary>
    public IDisposable DisableAdapters()
    {
        CheckUsable();
        if (!enabled) throw new InvalidOperationException("adapters are already disabled");
        foreach (var name in active)
        {
            if (configs[name].CannotDisableReason is { } reason) throw new InvalidOperationException($"adapter '{name}' cannot be disabled: {reason}");
        }
        foreach (var (_, layer) in TunerLayers()) layer.AdaptersEnabled = false;
        modulesToSave.Activate(Model, null, trainable: false);
        enabled = false;
        return new EnableOnDispose(this);
    }

    /// <summary>
    /// Folds the given adapters (default: the active ones) into the base weights of every adapter layer
    /// (PEFT's <c>merge_adapter</c>); the forward then skips them. <paramref name="safeMerge"/> checks for NaN/∞ first.
    /// </summary>
    public void MergeAdapter(IReadOnlyList<string>? adapterNames = null, bool safeMerge = false)
    {
        CheckUsable();
        var names = adapterNames ?? active;
        foreach (var name in names)
        {
            if (!configs.ContainsKey(name)) throw UnknownAdapter(name);
        }
        var done = new List<ITunerLayer>();
        try
        {
            foreach (var (_, layer) in TunerLayers())
            {
                var here = names.Where(layer.AdapterNames.Contains).ToList();
                if (here.Count == 0) continue;
                bool wasMerged = layer.MergedAdapters.Count > 0;
                layer.Merge(here, safeMerge);
                if (!wasMerged) done.Add(layer);
            }
        }
        catch
        {
            // All or nothing: a refused layer (NaN with safeMerge, an adapter merged twice) undoes this call's merges.
            foreach (var layer in done) layer.Unmerge();
            throw;
        }
    }

    /// <summary>Subtracts every merged adapter from the base weights again (PEFT's <c>unmerge_adapter</c>).</summary>
    public void UnmergeAdapter()
    {
        CheckUsable();
        foreach (var (_, layer) in TunerLayers()) layer.Unmerge();
    }

    /// <summary>
    /// Merges the given adapters (default: active) into the base weights and removes every adapter layer, putting the
    /// base layers back (PEFT's <c>merge_and_unload</c>). modules_to_save keep the active adapter's values. Returns
    /// <see cref="Model"/>; this PeftModel cannot be used afterwards.
    /// </summary>
    public Module MergeAndUnload(bool safeMerge = false, IReadOnlyList<string>? adapterNames = null)
    {
        CheckUsable();
        if (!enabled) throw new InvalidOperationException("cannot merge while adapters are disabled");
        foreach (var (_, layer) in TunerLayers()) layer.Unmerge();
        MergeAdapter(adapterNames, safeMerge);
        return RemoveAdapterLayers();
    }

    /// <summary>
    /// Removes every adapter layer without merging, giving back the base model (PEFT's <c>unload</c>); merged
    /// adapters are unmerged first. modules_to_save keep the active adapter's values. This PeftModel cannot be used afterwards.
    /// </summary>
    public Module Unload()
    {
        CheckUsable();
        foreach (var (_, layer) in TunerLayers()) layer.Unmerge();
        return RemoveAdapterLayers();
    }

    /// <summary>Parameters that currently require gradients, with their dotted names (what to give the optimizer).</summary>
    public IEnumerable<(string Name, Tensor Parameter)> TrainableParameters() =>
        Model.NamedParameters().Where(p => p.Parameter.RequiresGrad);

    /// <summary>
    /// (trainable, all) parameter counts as PEFT's <c>get_nb_trainable_parameters</c>: every distinct parameter
    /// tensor once (tied weights once), adapter parameters of all adapters included, and for modules_to_save both the
    /// originals and every adapter's copy; 4-bit base weights at their unpacked size (<see cref="Module.PackedWeightCount"/>).
    /// </summary>
    public (long Trainable, long All) GetNumberOfTrainableParameters()
    {
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        long trainable = 0, all = Model.NamedModules().Sum(m => m.Module.PackedWeightCount);
        foreach (var p in Model.Parameters())
        {
            if (!seen.Add(p)) continue;
            all += p.Count;
            if (p.RequiresGrad) trainable += p.Count;
        }
        return (trainable, all + modulesToSave.DetachedParameterCount(Model));
    }

    /// <summary>PEFT's line "trainable params: 1,234 || all params: 56,789 || trainable%: 2.1729".</summary>
    public string TrainableParametersSummary()
    {
        var (trainable, all) = GetNumberOfTrainableParameters();
        return PythonFormat.TrainableParametersLine(trainable, all);
    }

    /// <summary>Writes <see cref="TrainableParametersSummary"/> and a newline (to standard output by default), as PEFT's <c>print_trainable_parameters</c>.</summary>
    public void PrintTrainableParameters(TextWriter? writer = null) => (writer ?? Console.Out).WriteLine(TrainableParametersSummary());

    private void AddAdapterCore(string adapterName, PeftConfig config)
    {
        ArgumentException.ThrowIfNullOrEmpty(adapterName);
        if (adapterName.Contains('.', StringComparison.Ordinal)) throw new ArgumentException($"adapter name '{adapterName}' must not contain '.'", nameof(adapterName));
        if (configs.ContainsKey(adapterName)) throw new ArgumentException($"adapter '{adapterName}' already exists", nameof(adapterName));
        config = config.Clone();
        bool classification = config.TaskType is "SEQ_CLS" or "TOKEN_CLS";
        if (classification)
        {
            // PEFT's PeftModelForSequenceClassification / ForTokenClassification always train and save the head.
            var names = config.ModulesToSave?.ToList() ?? [];
            foreach (var head in new[] { "classifier", "score" })
            {
                if (!names.Contains(head)) names.Add(head);
            }
            config.ModulesToSave = names;
        }
        config.Validate();

        var targeted = config.Inject(Model, adapterName, generator);
        if (config.ModulesToSave is { Count: > 0 } saved && modulesToSave.AddAdapter(Model, adapterName, saved) == 0 && !classification)
            throw new PeftConfigException($"modules_to_save [{string.Join(", ", saved)}] matched no module of the model");
        configs[adapterName] = config;
        adapterOrder.Add(adapterName);
        targetedModules[adapterName] = targeted.ToList();
    }

    /// <summary>Biases (or other base parameters) that active configs train, e.g. LoRA bias = "all".</summary>
    private void ApplyExtraTrainables()
    {
        foreach (var config in configs.Values)
        {
            foreach (var parameter in config.ExtraTrainableParameterNames(Model)) Model.GetParameter(parameter).RequiresGrad = false;
        }
        foreach (var name in active)
        {
            if (configs[name].InferenceMode || !enabled) continue;
            foreach (var parameter in configs[name].ExtraTrainableParameterNames(Model))
            {
                var tensor = Model.GetParameter(parameter);
                tensor.RequiresGrad = tensor.DType == DType.Float32;
            }
        }
    }

    private void ActivateModulesToSave()
    {
        string? owner = active.FirstOrDefault(n => configs[n].ModulesToSave is { Count: > 0 });
        modulesToSave.Activate(Model, owner, trainable: owner is not null && !configs[owner].InferenceMode);
    }

    private Module RemoveAdapterLayers()
    {
        foreach (var (path, layer) in TunerLayers().ToList()) Model.ReplaceModule(path, layer.BaseLayer);
        unloaded = true;
        return Model;
    }

    private void CheckUsable()
    {
        if (unloaded) throw new InvalidOperationException("this PeftModel was unloaded (MergeAndUnload/Unload); its model no longer has adapter layers");
    }

    private static KeyNotFoundException UnknownAdapter(string name) => new($"adapter '{name}' does not exist");

    private sealed class EnableOnDispose(PeftModel owner) : IDisposable
    {
        private bool disposed;

        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            owner.enabled = true;
            foreach (var (_, layer) in owner.TunerLayers()) layer.AdaptersEnabled = true;
            owner.SetAdapters(owner.active);
        }
    }
}
