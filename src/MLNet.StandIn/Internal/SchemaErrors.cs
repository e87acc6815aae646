namespace Microsoft.ML.Internal;

/// <summary>The exceptions ML.NET raises for schema mismatches, with the same wording.</summary>
internal static class SchemaErrors
{
    /// <summary>"Could not find {role} column '{name}'".</summary>
    public static ArgumentOutOfRangeException Missing(string paramName, string role, string name)
        => new(paramName, $"Could not find {role} column '{name}'");

    /// <summary>"Schema mismatch for {role} column '{name}': expected {expected}, got {actual}".</summary>
    public static ArgumentOutOfRangeException Mismatch(string paramName, string role, string name, string expected, string actual)
        => new(paramName, $"Schema mismatch for {role} column '{name}': expected {expected}, got {actual}");

    /// <summary>Finds the column of a shape or throws the ML.NET message.</summary>
    public static SchemaShape.Column Find(SchemaShape shape, string role, string name)
        => shape.TryFindColumn(name, out var column) ? column : throw Missing("inputSchema", role, name);

    /// <summary>Finds the column of a schema or throws the ML.NET message.</summary>
    public static DataViewSchema.Column Find(DataViewSchema schema, string role, string name)
        => schema.GetColumnOrNull(name) ?? throw Missing("inputSchema", role, name);
}
