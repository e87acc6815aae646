using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.ML.Data;
using Microsoft.ML.Internal;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Transforms;

/// <summary>
/// A factory that recreates a custom mapping when a model is loaded. Derive from it, give the class a parameterless
/// constructor and decorate it with <see cref="CustomMappingFactoryAttributeAttribute"/> naming the contract.
/// </summary>
public abstract class CustomMappingFactory<TSrc, TDst>
    where TSrc : class, new()
    where TDst : class, new()
{
    /// <summary>The mapping action.</summary>
    public abstract Action<TSrc, TDst> GetMapping();
}

/// <summary>Marks a <see cref="CustomMappingFactory{TSrc, TDst}"/> with the contract name saved in models.</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class CustomMappingFactoryAttributeAttribute : ExtensionBaseAttribute
{
    /// <summary>Declares the factory of <paramref name="contractName"/>.</summary>
    public CustomMappingFactoryAttributeAttribute(string contractName)
        : base(contractName)
    {
    }
}

/// <summary>CustomMapping: runs a user action per row, from the <typeparamref name="TSrc"/> members to new <typeparamref name="TDst"/> columns.</summary>
public sealed class CustomMappingEstimator<TSrc, TDst> : TrivialEstimator<CustomMappingTransformer<TSrc, TDst>>
    where TSrc : class, new()
    where TDst : class, new()
{
    internal CustomMappingEstimator(CustomMappingTransformer<TSrc, TDst> transformer)
        : base(transformer)
    {
    }

    /// <summary>Checks the <typeparamref name="TSrc"/> columns and adds the <typeparamref name="TDst"/> columns.</summary>
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        foreach (var column in Transformer.InputDefinition)
        {
            var found = SchemaErrors.Find(inputSchema, "input", column.ColumnName);
            var expected = SchemaShape.Column.FromType(column.ColumnName, column.ColumnType, null);
            if (found.Kind != expected.Kind || found.IsKey != expected.IsKey || !found.ItemType.Equals(expected.ItemType))
                throw SchemaErrors.Mismatch(nameof(inputSchema), "input", column.ColumnName, expected.GetTypeString(), found.GetTypeString());
        }
        var result = inputSchema.ToList();
        foreach (var column in Transformer.OutputDefinition)
            ShapeEdit.Set(result, SchemaShape.Column.FromType(column.ColumnName, column.ColumnType, null));
        return new SchemaShape(result);
    }
}

/// <summary>The CustomMapping transformer. It saves only its contract name; loading recreates the action from the registered factory.</summary>
public sealed class CustomMappingTransformer<TSrc, TDst> : ITransformer
    where TSrc : class, new()
    where TDst : class, new()
{
    private readonly Action<TSrc, TDst> _mapAction;
    private readonly string? _contractName;

    internal CustomMappingTransformer(Action<TSrc, TDst> mapAction, string? contractName, SchemaDefinition? inputSchemaDefinition, SchemaDefinition? outputSchemaDefinition)
    {
        _mapAction = mapAction ?? throw new ArgumentNullException(nameof(mapAction));
        _contractName = contractName;
        InputDefinition = inputSchemaDefinition ?? SchemaDefinition.Create(typeof(TSrc), SchemaDefinition.Direction.Write);
        OutputDefinition = outputSchemaDefinition ?? SchemaDefinition.Create(typeof(TDst), SchemaDefinition.Direction.Read);
    }

    internal SchemaDefinition InputDefinition { get; }

    internal SchemaDefinition OutputDefinition { get; }

    /// <summary>The input columns followed by the <typeparamref name="TDst"/> columns.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => new Binding(this, inputSchema ?? throw new ArgumentNullException(nameof(inputSchema))).OutputSchema;

    /// <summary>Lazily applies the mapping.</summary>
    public IDataView Transform(IDataView input) => new MappedDataView(input ?? throw new ArgumentNullException(nameof(input)), new Binding(this, input.Schema));

    bool ITransformer.IsRowToRowMapper => true;

    IRowToRowMapper ITransformer.GetRowToRowMapper(DataViewSchema inputSchema) => new BoundRowMapper(new Binding(this, inputSchema ?? throw new ArgumentNullException(nameof(inputSchema))));

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        if (_contractName == null)
            throw new InvalidOperationException("Empty contract name for a transform: the transform cannot be saved");
        string assembly = _mapAction.Method.DeclaringType?.Assembly.FullName ?? typeof(TSrc).Assembly.FullName!;
        ctx.Written = PersistedComponent.Create(CustomMappingLoader.LoaderName, w =>
        {
            w.Write(_contractName);
            w.Write(assembly);
        });
    }

    /// <summary>The per-row state: the source object filled from the input row and the destination the action wrote.</summary>
    private sealed class RowState
    {
        public long Position = -1;
        public TSrc Source = new();
        public TDst Destination = new();
        public Action<TSrc>[]? Assigners;
    }

    private sealed class Binding : ColumnBinding
    {
        private readonly CustomMappingTransformer<TSrc, TDst> _parent;
        private readonly int[] _inputIndices;
        private readonly MemberInfo[] _inputMembers;
        private readonly MemberInfo[] _outputMembers;
        private readonly ConditionalWeakTable<DataViewRow, RowState> _states = new();

        public Binding(CustomMappingTransformer<TSrc, TDst> parent, DataViewSchema inputSchema)
            : base(inputSchema)
        {
            _parent = parent;
            _inputIndices = new int[parent.InputDefinition.Count];
            _inputMembers = new MemberInfo[parent.InputDefinition.Count];
            for (int i = 0; i < _inputIndices.Length; i++)
            {
                var definition = parent.InputDefinition[i];
                var column = SchemaErrors.Find(inputSchema, "input", definition.ColumnName);
                _inputMembers[i] = PocoMembers.Find(typeof(TSrc), definition.MemberName);
                if (!PocoWriter.CanAssign(PocoMembers.MemberType(_inputMembers[i]), column.Type))
                    throw SchemaErrors.Mismatch(nameof(inputSchema), "input", definition.ColumnName, definition.ColumnType.ToString()!, column.Type.ToString()!);
                _inputIndices[i] = column.Index;
            }
            (var outputSchema, _outputMembers) = EnumerableDataView<TDst>.BuildSchema(typeof(TDst), parent.OutputDefinition);
            AddedColumns = outputSchema.Select(c => new DataViewSchema.DetachedColumn(c)).ToArray();
        }

        public override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns { get; }

        public override IEnumerable<int> GetDependencies(int addedIndex) => _inputIndices;

        public override Delegate MakeGetter(DataViewRow input, int addedIndex)
        {
            var state = _states.GetValue(input, _ => new RowState());
            state.Assigners ??= _inputIndices.Select((index, i) => PocoWriter.CreateAssigner<TSrc>(input, input.Schema[index], _inputMembers[i])).ToArray();
            TDst Current()
            {
                if (state.Position != input.Position)
                {
                    foreach (var assign in state.Assigners!)
                        assign(state.Source);
                    state.Destination = new TDst();
                    _parent._mapAction(state.Source, state.Destination);
                    state.Position = input.Position;
                }
                return state.Destination;
            }
            return PocoReader.CreateGetter<TDst>(_outputMembers[addedIndex], AddedColumns[addedIndex].Type, Current);
        }
    }
}

/// <summary>Loads saved custom mappings: loads the saved assembly, registers it and instantiates the factory of the contract.</summary>
internal static class CustomMappingLoader
{
    public const string LoaderName = "CustomMappingTransformer";

    public static ITransformer Load(PersistedComponent component, ComponentCatalog catalog)
    {
        using var reader = component.OpenPayload();
        string contractName = reader.ReadString();
        string assemblyName = reader.ReadString();
        try
        {
            catalog.RegisterAssembly(Assembly.Load(assemblyName), throwOnError: false);
        }
        catch (Exception ex) when (ex is FileNotFoundException or FileLoadException or BadImageFormatException)
        {
            // Fall through: the factory may already be registered from another assembly.
        }
        var factoryType = catalog.FindExtension<CustomMappingFactoryAttributeAttribute>(contractName)
            ?? throw new InvalidOperationException(
                $"Unable to locate an extension for the contract '{contractName}'. Ensure you have called {nameof(ComponentCatalog)}.{nameof(ComponentCatalog.RegisterAssembly)} with the Assembly that contains a class decorated with a '{nameof(CustomMappingFactoryAttributeAttribute)}'.");
        var baseType = factoryType;
        while (baseType != null && !(baseType.IsGenericType && baseType.GetGenericTypeDefinition() == typeof(CustomMappingFactory<,>)))
            baseType = baseType.BaseType;
        if (baseType == null)
            throw new InvalidOperationException($"'{factoryType.FullName}' (contract '{contractName}') does not derive from CustomMappingFactory<TSrc, TDst>.");
        var factory = Activator.CreateInstance(factoryType)!;
        var method = typeof(CustomMappingLoader).GetMethod(nameof(Create), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(baseType.GetGenericArguments());
        return (ITransformer)method.Invoke(null, new[] { factory, contractName })!;
    }

    private static ITransformer Create<TSrc, TDst>(CustomMappingFactory<TSrc, TDst> factory, string contractName)
        where TSrc : class, new()
        where TDst : class, new()
        => new CustomMappingTransformer<TSrc, TDst>(factory.GetMapping(), contractName, null, null);
}
