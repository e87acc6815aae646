using System.Reflection;

namespace Microsoft.ML.Runtime;

/// <summary>
/// The catalog of extension classes (classes decorated with an <see cref="ExtensionBaseAttribute"/>, such as
/// custom-mapping factories) found in registered assemblies. The constructor is internal.
/// </summary>
public sealed class ComponentCatalog
{
    private readonly object _lock = new();
    private readonly HashSet<Assembly> _registered = new();
    private readonly Dictionary<(Type AttributeType, string ContractName), Type> _extensions = new();

    internal ComponentCatalog()
    {
    }

    /// <summary>
    /// Registers the extension classes of <paramref name="assembly"/>. A contract name already registered by a different
    /// class throws when <paramref name="throwOnError"/> is true and is skipped otherwise.
    /// </summary>
    public void RegisterAssembly(Assembly assembly, bool throwOnError = true)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        lock (_lock)
        {
            if (!_registered.Add(assembly))
                return;
            Type[] types;
            try
            {
                types = assembly.GetTypes();
            }
            catch (ReflectionTypeLoadException ex)
            {
                if (throwOnError)
                    throw;
                types = ex.Types.Where(t => t != null).ToArray()!;
            }
            foreach (var type in types)
            {
                if (!type.IsClass)
                    continue;
                foreach (var attribute in type.GetCustomAttributes<ExtensionBaseAttribute>(inherit: false))
                {
                    var key = (attribute.GetType(), attribute.ContractName);
                    if (_extensions.TryGetValue(key, out var existing) && existing != type)
                    {
                        if (throwOnError)
                            throw new InvalidOperationException(
                                $"Contract '{attribute.ContractName}' of extension type '{attribute.GetType().Name}' is already registered by '{existing.FullName}'; '{type.FullName}' cannot register it again.");
                        continue;
                    }
                    _extensions[key] = type;
                }
            }
        }
    }

    /// <summary>The class registered for (<typeparamref name="TAttribute"/>, <paramref name="contractName"/>), or null.</summary>
    internal Type? FindExtension<TAttribute>(string contractName)
        where TAttribute : ExtensionBaseAttribute
    {
        lock (_lock)
            return _extensions.TryGetValue((typeof(TAttribute), contractName), out var type) ? type : null;
    }
}
