namespace Microsoft.ML.Internal;

/// <summary>Schema-shape edits with ML.NET's dictionary semantics: a column of an existing name is replaced in place, a new one is appended.</summary>
internal static class ShapeEdit
{
    public static void Set(List<SchemaShape.Column> columns, SchemaShape.Column column)
    {
        int index = columns.FindIndex(c => c.Name == column.Name);
        if (index >= 0)
            columns[index] = column;
        else
            columns.Add(column);
    }
}
