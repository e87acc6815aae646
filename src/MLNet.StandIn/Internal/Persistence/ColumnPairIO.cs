namespace Microsoft.ML.Internal;

/// <summary>Saves and loads (output, input) column-name pairs.</summary>
internal static class ColumnPairIO
{
    public static void Write(BinaryWriter writer, (string outputColumnName, string inputColumnName)[] pairs)
    {
        writer.Write(pairs.Length);
        foreach (var (output, input) in pairs)
        {
            writer.Write(output);
            writer.Write(input);
        }
    }

    public static (string, string)[] Read(BinaryReader reader, string what)
    {
        int count = reader.ReadInt32();
        if (count <= 0 || count > 100_000)
            throw new InvalidDataException($"Invalid column count {count} in saved {what} transformer.");
        var pairs = new (string, string)[count];
        for (int i = 0; i < count; i++)
            pairs[i] = (reader.ReadString(), reader.ReadString());
        return pairs;
    }
}
