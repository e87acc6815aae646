namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// A region of code whose temporary tensors go back to <see cref="TensorPool"/> when it ends:
/// <code>
/// using (var scope = TensorScope.Begin())
/// {
///     var loss = model.Forward(batch);
///     loss.Backward();
///     optimizer.Step();
///     lossValue = loss.Item();
/// }
/// </code>
/// Every pooled buffer allocated on this thread while the scope is the innermost one is released on
/// <see cref="Dispose"/>; tensors on such buffers then throw <see cref="ObjectDisposedException"/> when touched.
/// </summary>
/// <remarks>
/// Scopes nest and must be disposed innermost first. Tensors created outside any scope (parameters, optimizer state,
/// gradients of leaf tensors) are never released by a scope; gradients of leaves are always allocated that way.
/// Use <see cref="Tensor.MoveToOuterScope"/> to let a result outlive the scope that computed it.
/// </remarks>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic]
    private static TensorScope? current;

    private readonly TensorScope? parent;
    private readonly int threadId;
    private List<PooledStorage> owned;
    private bool disposed;

    private TensorScope(TensorScope? parent)
    {
        this.parent = parent;
        threadId = Environment.CurrentManagedThreadId;
        owned = ListCache.Take();
    }

    /// <summary>The innermost active scope on this thread, or null.</summary>
    public static TensorScope? Current => current;

    /// <summary>Number of pooled buffers this scope will release.</summary>
    public int OwnedBufferCount => owned.Count;

    /// <summary>Starts a scope on the current thread; it becomes the innermost one until disposed.</summary>
    public static TensorScope Begin()
    {
        var scope = new TensorScope(current);
        current = scope;
        return scope;
    }

    /// <summary>Releases every buffer still owned by this scope and makes the enclosing scope current again.</summary>
    public void Dispose()
    {
        if (disposed) return;
        if (Environment.CurrentManagedThreadId != threadId)
            throw new InvalidOperationException("TensorScope must be disposed on the thread that began it.");
        if (!ReferenceEquals(current, this))
            throw new InvalidOperationException("TensorScope disposed out of order: dispose inner scopes first.");
        disposed = true;
        foreach (var storage in owned)
        {
            // A storage moved to an outer scope keeps its entry here but names another owner.
            if (ReferenceEquals(storage.OwnerScope, this)) storage.Release();
        }
        owned.Clear();
        ListCache.Give(owned);
        owned = null!;
        current = parent;
    }

    /// <summary>Registers a freshly allocated pooled storage with the innermost scope, if any.</summary>
    internal static void Track(PooledStorage storage)
    {
        var scope = current;
        if (scope is null) return;
        storage.OwnerScope = scope;
        scope.owned.Add(storage);
    }

    /// <summary>Hands a storage owned by this scope to the enclosing scope (or to the GC when there is none).</summary>
    internal static void MoveOut(PooledStorage storage)
    {
        var owner = storage.OwnerScope;
        if (owner is null) return;
        var target = owner.parent;
        storage.OwnerScope = target;
        target?.owned.Add(storage);
    }

    /// <summary>Removes a storage from scope ownership altogether: it lives until the GC collects it (parameters).</summary>
    internal static void Forget(PooledStorage storage) => storage.OwnerScope = null;

    /// <summary>Suspends tracking on this thread: allocations inside are owned by no scope (persistent state).</summary>
    internal static UntrackedRegion Untracked()
    {
        var saved = current;
        current = null;
        return new UntrackedRegion(saved);
    }

    /// <summary>Restores the scope suspended by <see cref="Untracked"/>.</summary>
    internal readonly struct UntrackedRegion(TensorScope? saved) : IDisposable
    {
        public void Dispose() => current = saved;
    }

    /// <summary>Reuses the owned-storage lists of finished scopes so a training step does not allocate them.</summary>
    private static class ListCache
    {
        [ThreadStatic]
        private static Stack<List<PooledStorage>>? lists;

        public static List<PooledStorage> Take() =>
            lists is { Count: > 0 } ? lists.Pop() : new List<PooledStorage>(256);

        public static void Give(List<PooledStorage> list) => (lists ??= new()).Push(list);
    }
}
