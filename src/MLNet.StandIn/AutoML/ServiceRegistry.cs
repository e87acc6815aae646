using System.Reflection;

namespace Microsoft.ML.AutoML;

/// <summary>
/// The experiment's minimal dependency injection: services registered as instances or factories, resolved by
/// <see cref="IServiceProvider.GetService"/>. Later registrations of a service type replace earlier ones (as "the last
/// AddTransient wins" in ML.NET), and factories run once per resolution scope (one experiment run).
/// </summary>
internal sealed class ServiceRegistry
{
    private readonly Dictionary<Type, Func<IServiceProvider, object>> _factories = new();

    public void AddInstance(Type serviceType, object instance) => _factories[serviceType] = _ => instance;

    public void AddFactory(Type serviceType, Func<IServiceProvider, object> factory) => _factories[serviceType] = factory;

    public void AddType(Type serviceType, Type implementation) => _factories[serviceType] = provider => Activate(provider, implementation);

    public bool Contains(Type serviceType) => _factories.ContainsKey(serviceType);

    public Scope CreateScope() => new(this);

    /// <summary>Constructs <paramref name="type"/> with the public constructor whose parameters can all be resolved (most parameters first).</summary>
    internal static object Activate(IServiceProvider provider, Type type)
    {
        foreach (var ctor in type.GetConstructors(BindingFlags.Public | BindingFlags.Instance).OrderByDescending(c => c.GetParameters().Length))
        {
            var arguments = ctor.GetParameters().Select(p => provider.GetService(p.ParameterType) ?? (p.HasDefaultValue ? p.DefaultValue : null)).ToArray();
            if (arguments.Zip(ctor.GetParameters()).All(a => a.First != null || a.Second.HasDefaultValue))
                return ctor.Invoke(arguments);
        }
        throw new InvalidOperationException($"Cannot construct {type.Name}: no public constructor whose parameters are all registered services.");
    }

    /// <summary>One resolution scope: each registered service is created at most once.</summary>
    internal sealed class Scope : IServiceProvider
    {
        private readonly ServiceRegistry _registry;
        private readonly Dictionary<Type, object> _created = new();

        public Scope(ServiceRegistry registry)
        {
            _registry = registry;
        }

        public object? GetService(Type serviceType)
        {
            if (serviceType == typeof(IServiceProvider))
                return this;
            if (_created.TryGetValue(serviceType, out var existing))
                return existing;
            if (!_registry._factories.TryGetValue(serviceType, out var factory))
                return null;
            var service = factory(this);
            _created[serviceType] = service;
            return service;
        }

        public T GetRequired<T>()
            where T : class
            => GetService(typeof(T)) as T ?? throw new InvalidOperationException($"No {typeof(T).Name} is registered with the experiment.");
    }
}
