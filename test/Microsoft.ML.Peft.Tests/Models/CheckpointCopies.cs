using System.Text.Json.Nodes;
using Microsoft.ML.Peft.IO;

namespace Microsoft.ML.Peft.Tests.Models;

/// <summary>Writes modified copies of the tiny reference checkpoints into a temporary folder (deleted on dispose).</summary>
internal sealed class CheckpointCopies : IDisposable
{
    public CheckpointCopies() => Root = Directory.CreateTempSubdirectory("peft-models-").FullName;

    public string Root { get; }

    /// <summary>
    /// A folder holding <paramref name="arch"/>'s config.json (edited by <paramref name="editConfig"/>) and a
    /// model.safetensors with every tensor passed through <paramref name="rewrite"/>: return (name, view) to keep or
    /// rename, null to drop, or use the writer directly for replacements.
    /// </summary>
    public string Copy(string arch, string name, Action<JsonObject>? editConfig = null,
        Func<TensorView, SafeTensorsWriter, bool>? rewrite = null, string fixtureSubfolder = "")
    {
        string source = TestPaths.Fixture("reference", "models", arch, fixtureSubfolder);
        string folder = Path.Combine(Root, name);
        Directory.CreateDirectory(folder);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
        editConfig?.Invoke(config);
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        using var file = SafeTensorsFile.Open(Path.Combine(source, "model.safetensors"));
        var writer = new SafeTensorsWriter();
        foreach (var view in file.Tensors)
        {
            if (rewrite is null || !rewrite(view, writer)) writer.Add(view);
        }
        writer.Save(Path.Combine(folder, "model.safetensors"));
        return folder;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A memory-mapped file may still be open until the GC finalises it; the OS temp cleaner removes the rest.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
