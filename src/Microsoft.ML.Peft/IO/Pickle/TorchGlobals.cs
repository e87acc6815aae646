using System.Collections.Frozen;

namespace Microsoft.ML.Peft.IO.Pickle;

/// <summary>
/// The allow-list of Python globals a PyTorch state dict may name, and the C# interpretation of the few that are
/// "called". Anything else — <c>os.system</c>, <c>builtins.eval</c>, <c>subprocess.Popen</c>, any class — is refused
/// with a <see cref="PickleFormatException"/> that names it.
/// </summary>
internal static class TorchGlobals
{
    private const string OrderedDict = "collections.OrderedDict";
    private const string RebuildTensorV2 = "torch._utils._rebuild_tensor_v2";
    private const string RebuildTensor = "torch._utils._rebuild_tensor";
    private const string RebuildParameter = "torch._utils._rebuild_parameter";
    private const string RebuildParameterWithState = "torch._utils._rebuild_parameter_with_state";

    /// <summary>Legacy typed-storage classes, which <c>torch.save</c> writes into persistent ids to give the dtype.</summary>
    private static readonly FrozenDictionary<string, CheckpointDType> StorageTypes = new Dictionary<string, CheckpointDType>
    {
        ["torch.DoubleStorage"] = CheckpointDType.F64,
        ["torch.FloatStorage"] = CheckpointDType.F32,
        ["torch.HalfStorage"] = CheckpointDType.F16,
        ["torch.BFloat16Storage"] = CheckpointDType.BF16,
        ["torch.LongStorage"] = CheckpointDType.I64,
        ["torch.IntStorage"] = CheckpointDType.I32,
        ["torch.ShortStorage"] = CheckpointDType.I16,
        ["torch.CharStorage"] = CheckpointDType.I8,
        ["torch.ByteStorage"] = CheckpointDType.U8,
        ["torch.BoolStorage"] = CheckpointDType.Bool,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private static readonly FrozenSet<string> Callables = new[]
    {
        OrderedDict, RebuildTensorV2, RebuildTensor, RebuildParameter, RebuildParameterWithState,
    }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>The allow-list, for messages and documentation.</summary>
    public static IEnumerable<string> AllowList => Callables.Concat(StorageTypes.Keys).Order(StringComparer.Ordinal);

    /// <summary>Returns the global if allowed; otherwise refuses it before anything could use it.</summary>
    public static PickleGlobal Resolve(string module, string name, string path)
    {
        string full = $"{module}.{name}";
        if (Callables.Contains(full) || StorageTypes.ContainsKey(full)) return new PickleGlobal(module, name);
        throw new PickleFormatException(path,
            $"data.pkl refers to the Python global '{full}', which is not on the allow-list of the tensor-rebuild protocol " +
            $"({string.Join(", ", AllowList)}); the checkpoint was refused and nothing in it was executed",
            refusedGlobal: full);
    }

    /// <summary>The dtype of a storage-class global, e.g. torch.HalfStorage → F16.</summary>
    public static CheckpointDType StorageDType(object? storageType, string path) =>
        storageType is PickleGlobal g && StorageTypes.TryGetValue(g.ToString(), out var dtype)
            ? dtype
            : throw new PickleFormatException(path, $"persistent id names storage type '{storageType}', which is not a known torch storage class");

    /// <summary>Interprets a REDUCE of an allowed callable.</summary>
    public static object Call(PickleGlobal callable, PickleTuple args, string path)
    {
        var a = args.Items;
        switch (callable.ToString())
        {
            case OrderedDict:
                {
                    var dict = new PickleDict();
                    if (a.Length == 0) return dict;
                    if (a.Length == 1 && a[0] is List<object?> pairs)
                    {
                        foreach (var pair in pairs)
                        {
                            if (pair is not PickleTuple { Items.Length: 2 } kv) throw Fail(path, callable, "expects (key, value) pairs");
                            dict.Set(kv.Items[0], kv.Items[1]);
                        }
                        return dict;
                    }
                    throw Fail(path, callable, "expects no arguments or one list of pairs");
                }
            case RebuildTensorV2:
            case RebuildTensor:
                // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
                if (a.Length < 4) throw Fail(path, callable, $"expects at least 4 arguments, got {a.Length}");
                return new TorchTensorRef(
                    a[0] as TorchStorageRef ?? throw Fail(path, callable, "argument 0 is not a storage"),
                    a[1] is long offset ? offset : throw Fail(path, callable, "storage_offset is not an integer"),
                    Ints(a[2], path, callable, "size"),
                    Ints(a[3], path, callable, "stride"));
            case RebuildParameter:
            case RebuildParameterWithState:
                // (data, requires_grad, backward_hooks[, state]): a Parameter is its data tensor for our purposes.
                if (a.Length < 1 || a[0] is not TorchTensorRef data) throw Fail(path, callable, "argument 0 is not a tensor");
                return data;
            default:
                throw Fail(path, callable, "is a type marker and cannot be called");
        }
    }

    /// <summary>BUILD (setstate): allowed only on dicts (OrderedDict's <c>_metadata</c> attribute), where it is ignored.</summary>
    public static void Build(object? target, object? state, string path)
    {
        if (target is PickleDict) return;
        throw new PickleFormatException(path, $"BUILD on a {target?.GetType().Name ?? "None"} is outside the tensor-rebuild protocol (state: {state?.GetType().Name ?? "None"})");
    }

    private static long[] Ints(object? value, string path, PickleGlobal callable, string what)
    {
        if (value is not PickleTuple t) throw Fail(path, callable, $"{what} is not a tuple");
        var result = new long[t.Items.Length];
        for (int i = 0; i < result.Length; i++)
            result[i] = t.Items[i] is long v ? v : throw Fail(path, callable, $"{what}[{i}] is not an integer");
        return result;
    }

    private static PickleFormatException Fail(string path, PickleGlobal callable, string detail) =>
        new(path, $"{callable}: {detail}");
}
