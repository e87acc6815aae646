using System.Reflection;

namespace Microsoft.ML.Data;

/// <summary>
/// How the public fields and properties of a POCO map to IDataView columns (name and type per member). Built with
/// <see cref="Create"/>; a column's <see cref="Column.ColumnType"/> can be overridden, e.g. to fix a vector size at run time.
/// </summary>
public sealed class SchemaDefinition : List<SchemaDefinition.Column>
{
    /// <summary>Whether the mapping reads values from objects, writes values into objects, or both.</summary>
    [Flags]
    public enum Direction
    {
        /// <summary>Values are read from the object's members.</summary>
        Read = 1,

        /// <summary>Values are written into the object's members.</summary>
        Write = 2,

        /// <summary>Both.</summary>
        Both = Read | Write,
    }

    private SchemaDefinition()
    {
    }

    /// <summary>The column named <paramref name="columnName"/>.</summary>
    public Column this[string columnName]
        => this.FirstOrDefault(c => c.ColumnName == columnName)
           ?? throw new ArgumentOutOfRangeException(nameof(columnName), $"No column named '{columnName}' in the schema definition.");

    /// <summary>One column per public field or property of <paramref name="userType"/> (except [NoColumn] ones).</summary>
    public static SchemaDefinition Create(Type userType, Direction direction = Direction.Both)
    {
        ArgumentNullException.ThrowIfNull(userType);
        var definition = new SchemaDefinition();
        foreach (var member in Internal.PocoMembers.Get(userType, direction))
        {
            string name = member.GetCustomAttribute<ColumnNameAttribute>()?.Name ?? member.Name;
            if (definition.Any(c => c.ColumnName == name))
                throw new InvalidOperationException($"Type '{userType}' maps two members to the column name '{name}'.");
            var type = Internal.PocoTypes.InferColumnType(member);
            definition.Add(new Column(member.Name, type, name));
        }
        return definition;
    }

    /// <summary>The mapping of one member to one column.</summary>
    public sealed class Column
    {
        internal Column(string memberName, DataViewType columnType, string? columnName = null)
        {
            MemberName = memberName ?? throw new ArgumentNullException(nameof(memberName));
            ColumnType = columnType ?? throw new ArgumentNullException(nameof(columnType));
            ColumnName = columnName ?? memberName;
        }

        /// <summary>The field or property name.</summary>
        public string MemberName { get; }

        /// <summary>The IDataView column name.</summary>
        public string ColumnName { get; set; }

        /// <summary>The IDataView column type.</summary>
        public DataViewType ColumnType { get; set; }
    }
}
