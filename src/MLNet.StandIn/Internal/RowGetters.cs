using System.Collections.Concurrent;
using System.Reflection;

namespace Microsoft.ML.Internal;

/// <summary>Helpers to work with getters whose value type is only known at run time.</summary>
internal static class RowGetters
{
    private static readonly MethodInfo GetGetterMethod = typeof(DataViewRow).GetMethod(nameof(DataViewRow.GetGetter))!;
    private static readonly ConcurrentDictionary<Type, MethodInfo> GetGetterByType = new();

    /// <summary>The getter of <paramref name="column"/> as a <c>ValueGetter&lt;RawType&gt;</c> delegate. Reflection runs
    /// once per call (i.e. once per cursor and column), never per row.</summary>
    public static Delegate GetUntypedGetter(DataViewRow row, DataViewSchema.Column column)
    {
        var method = GetGetterByType.GetOrAdd(column.Type.RawType, t => GetGetterMethod.MakeGenericMethod(t));
        try
        {
            return (Delegate)method.Invoke(row, new object[] { column })!;
        }
        catch (TargetInvocationException ex) when (ex.InnerException != null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex.InnerException).Throw();
            throw;
        }
    }

    /// <summary>Throws the ML.NET message when a getter is requested with the wrong value type.</summary>
    public static void CheckValueType<TValue>(DataViewSchema.Column column)
    {
        if (typeof(TValue) != column.Type.RawType)
            throw new InvalidOperationException(
                $"Invalid TValue in GetGetter: '{typeof(TValue)}', expected type: '{column.Type.RawType}' (column '{column.Name}' of type {column.Type}).");
    }

    /// <summary>Throws when a getter is requested for an inactive column.</summary>
    public static InvalidOperationException InactiveColumn(DataViewSchema.Column column)
        => new($"Column '{column.Name}' (index {column.Index}) is not active in this row; request it in columnsNeeded.");

    /// <summary>Checks that <paramref name="column"/> belongs to <paramref name="schema"/>.</summary>
    public static void CheckColumnOf(DataViewSchema schema, DataViewSchema.Column column, string paramName)
    {
        if ((uint)column.Index >= (uint)schema.Count || schema[column.Index].Name != column.Name)
            throw new ArgumentOutOfRangeException(paramName, $"Column '{column.Name}' (index {column.Index}) is not a column of this schema ({schema.Count} columns).");
    }

    /// <summary>A boolean mask of schema size from a set of columns.</summary>
    public static bool[] ActiveMask(DataViewSchema schema, IEnumerable<DataViewSchema.Column> columns)
    {
        ArgumentNullException.ThrowIfNull(columns);
        var mask = new bool[schema.Count];
        foreach (var column in columns)
        {
            CheckColumnOf(schema, column, nameof(columns));
            mask[column.Index] = true;
        }
        return mask;
    }

    /// <summary>The columns of <paramref name="schema"/> selected by <paramref name="mask"/>.</summary>
    public static IEnumerable<DataViewSchema.Column> Selected(DataViewSchema schema, bool[] mask)
    {
        for (int i = 0; i < mask.Length; i++)
        {
            if (mask[i])
                yield return schema[i];
        }
    }
}
