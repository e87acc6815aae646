using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace Microsoft.ML.Internal;

/// <summary>
/// Reads and writes the stand-in's model zip: <c>Version.txt</c>, <c>Schema.bin</c> (the input schema, when given) and a
/// tree of components under <c>Model/</c> (each directory has <c>Component.bin</c> and <c>Child_NNN/</c> subdirectories).
/// Entry names are validated on load so that no entry can point outside the archive's own namespace.
/// </summary>
internal static class ModelArchive
{
    private const string FormatMarker = "Microsoft.ML.StandIn model v1";
    private const string VersionEntry = "Version.txt";
    private const string SchemaEntry = "Schema.bin";
    private const string ModelRoot = "Model";
    private const string ComponentEntry = "Component.bin";
    private const int MaxDepth = 64;

    public static void Write(Stream stream, PersistedComponent? model, DataViewSchema? inputSchema)
    {
        using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
        WriteEntry(zip, VersionEntry, w => w.Write(Encoding.UTF8.GetBytes(FormatMarker)));
        if (inputSchema != null)
            WriteEntry(zip, SchemaEntry, w => BinaryCodec.WriteSchema(w, inputSchema));
        if (model != null)
            WriteComponent(zip, ModelRoot, model);
    }

    private static void WriteComponent(ZipArchive zip, string directory, PersistedComponent component)
    {
        WriteEntry(zip, directory + "/" + ComponentEntry, w =>
        {
            w.Write(component.LoaderName);
            w.Write(component.Payload.Length);
            w.Write(component.Payload);
            w.Write(component.Children.Count);
        });
        for (int i = 0; i < component.Children.Count; i++)
            WriteComponent(zip, ChildDirectory(directory, i), component.Children[i]);
    }

    private static string ChildDirectory(string directory, int index) => directory + "/Child_" + index.ToString("D3", CultureInfo.InvariantCulture);

    private static void WriteEntry(ZipArchive zip, string name, Action<BinaryWriter> write)
    {
        var entry = zip.CreateEntry(name, CompressionLevel.Fastest);
        using var entryStream = entry.Open();
        using var writer = new BinaryWriter(entryStream, Encoding.UTF8);
        write(writer);
    }

    public static (PersistedComponent? Model, DataViewSchema? InputSchema) Read(Stream stream, string source)
    {
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"Model {source} is not a zip archive.", ex);
        }
        using (zip)
        {
            var entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
            foreach (var entry in zip.Entries)
            {
                CheckEntryName(entry.FullName, source);
                entries[entry.FullName] = entry;
            }
            if (!entries.TryGetValue(VersionEntry, out var version) || ReadAllText(version) != FormatMarker)
                throw new InvalidDataException($"Model {source} was not written by Microsoft.ML.StandIn (missing or unknown '{VersionEntry}').");
            DataViewSchema? schema = null;
            if (entries.TryGetValue(SchemaEntry, out var schemaEntry))
                schema = ReadEntry(schemaEntry, source, BinaryCodec.ReadSchema);
            PersistedComponent? model = entries.ContainsKey(ModelRoot + "/" + ComponentEntry)
                ? ReadComponent(entries, ModelRoot, source, 0)
                : null;
            return (model, schema);
        }
    }

    private static PersistedComponent ReadComponent(Dictionary<string, ZipArchiveEntry> entries, string directory, string source, int depth)
    {
        if (depth > MaxDepth)
            throw new InvalidDataException($"Model {source} nests components more than {MaxDepth} levels deep.");
        string name = directory + "/" + ComponentEntry;
        if (!entries.TryGetValue(name, out var entry))
            throw new InvalidDataException($"Model {source} is missing entry '{name}'.");
        var (loader, payload, childCount) = ReadEntry(entry, source, r =>
        {
            string loaderName = r.ReadString();
            int length = r.ReadInt32();
            if (length < 0)
                throw new InvalidDataException($"Negative payload length in '{name}'.");
            var bytes = r.ReadBytes(length);
            if (bytes.Length != length)
                throw new EndOfStreamException();
            int children = r.ReadInt32();
            if (children < 0 || children > 100_000)
                throw new InvalidDataException($"Invalid child count {children} in '{name}'.");
            return (loaderName, bytes, children);
        });
        var list = new List<PersistedComponent>(childCount);
        for (int i = 0; i < childCount; i++)
            list.Add(ReadComponent(entries, ChildDirectory(directory, i), source, depth + 1));
        return new PersistedComponent(loader, payload, list);
    }

    private static T ReadEntry<T>(ZipArchiveEntry entry, string source, Func<BinaryReader, T> read)
    {
        using var entryStream = entry.Open();
        using var buffer = new MemoryStream();
        entryStream.CopyTo(buffer);
        buffer.Position = 0;
        using var reader = new BinaryReader(buffer, Encoding.UTF8);
        try
        {
            return read(reader);
        }
        catch (EndOfStreamException ex)
        {
            throw new InvalidDataException($"Model {source}: entry '{entry.FullName}' is truncated.", ex);
        }
    }

    private static string ReadAllText(ZipArchiveEntry entry)
    {
        using var reader = new StreamReader(entry.Open(), Encoding.UTF8);
        return reader.ReadToEnd();
    }

    /// <summary>
    /// Rejects entry names that could escape the archive if it were ever extracted (absolute paths, drive letters,
    /// backslashes, "." or ".." segments, control characters).
    /// </summary>
    internal static void CheckEntryName(string name, string source)
    {
        bool bad = name.Length == 0 || name[0] == '/' || name.Contains('\\') || name.Contains(':')
                   || name.Any(char.IsControl)
                   || name.Split('/').Any(segment => segment == ".." || segment == ".");
        if (bad)
            throw new InvalidDataException($"Model {source} contains an unsafe zip entry name '{name}' (path traversal is not allowed).");
    }
}
