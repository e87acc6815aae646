using System.Globalization;
using System.Text.Json;
using Microsoft.ML.Peft.IO;

namespace Microsoft.ML.Peft.Training;

/// <summary>
/// Resumable checkpoints in a folder: <c>checkpoint-&lt;step&gt;/</c> holding <c>state.safetensors</c> (trainable
/// weights <c>param.&lt;name&gt;</c>, Adam moments <c>exp_avg.&lt;name&gt;</c> / <c>exp_avg_sq.&lt;name&gt;</c>, early
/// stopping's best weights <c>best.&lt;name&gt;</c>) and <c>trainer_state.json</c>.
/// </summary>
/// <remarks>
/// A checkpoint is written into a hidden temporary folder and renamed into place only when complete, so a kill at any
/// moment leaves either the previous checkpoint or the new one, never a torn one; older checkpoints are deleted after
/// the rename. Leftover temporary folders are ignored and cleaned up.
/// </remarks>
internal sealed class CheckpointStore
{
    private const string Prefix = "checkpoint-";
    private const string StateFile = "trainer_state.json";
    private const string TensorFile = "state.safetensors";
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public CheckpointStore(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Folder = Path.GetFullPath(folder);
    }

    public string Folder { get; }

    /// <summary>The newest complete checkpoint folder, or null.</summary>
    public string? Latest()
    {
        if (!Directory.Exists(Folder)) return null;
        return Directory.GetDirectories(Folder, Prefix + "*")
            .Select(d => (Path: d, Step: StepOf(d)))
            .Where(x => x.Step >= 0 && File.Exists(Path.Combine(x.Path, StateFile)) && File.Exists(Path.Combine(x.Path, TensorFile)))
            .OrderByDescending(x => x.Step)
            .Select(x => x.Path)
            .FirstOrDefault();
    }

    /// <summary>Writes a checkpoint for <paramref name="state"/> and removes older ones; returns its folder.</summary>
    public string Save(TrainerState state, IReadOnlyDictionary<string, float[]> tensors, IReadOnlyDictionary<string, int[]> shapes)
    {
        Directory.CreateDirectory(Folder);
        string name = Prefix + state.GlobalStep.ToString("D8", CultureInfo.InvariantCulture);
        string final = Path.Combine(Folder, name);
        string temp = Path.Combine(Folder, $".{name}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(temp);
        try
        {
            var writer = new SafeTensorsWriter();
            foreach (var (key, values) in tensors) writer.Add(key, values, shapes[key]);
            writer.Save(Path.Combine(temp, TensorFile));
            AtomicFile.WriteAllText(Path.Combine(temp, StateFile), JsonSerializer.Serialize(state, JsonOptions));
            if (Directory.Exists(final))
            {
                // Not reached by TrainingLoop (one checkpoint per step number); keep the old one until the new is in place.
                string aside = Path.Combine(Folder, $".{name}.{Guid.NewGuid():N}.old.tmp");
                Directory.Move(final, aside);
                Directory.Move(temp, final);
                TryDelete(aside);
            }
            else
            {
                Directory.Move(temp, final);
            }
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        foreach (var old in Directory.GetDirectories(Folder, Prefix + "*").Where(d => !PathsEqual(d, final)))
            TryDelete(old);
        foreach (var leftover in Directory.GetDirectories(Folder, "." + Prefix + "*.tmp")) TryDelete(leftover);
        return final;
    }

    /// <summary>Reads a checkpoint written by <see cref="Save"/>.</summary>
    public static (TrainerState State, Dictionary<string, float[]> Tensors) Load(string checkpoint)
    {
        string statePath = Path.Combine(checkpoint, StateFile);
        TrainerState state;
        try
        {
            state = JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(statePath))
                ?? throw new InvalidDataException($"{statePath} is empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"checkpoint state {statePath} is not valid JSON: {e.Message}", e);
        }
        if (state.Format != 1) throw new InvalidDataException($"{statePath}: unsupported checkpoint format {state.Format}");
        var tensors = new Dictionary<string, float[]>(StringComparer.Ordinal);
        using (var file = SafeTensorsFile.Open(Path.Combine(checkpoint, TensorFile)))
        {
            foreach (var t in file.Tensors) tensors[t.Name] = t.ToFloat32Array();
        }
        return (state, tensors);
    }

    private static long StepOf(string directory)
    {
        string name = Path.GetFileName(directory);
        return name.StartsWith(Prefix, StringComparison.Ordinal) &&
               long.TryParse(name.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long step) ? step : -1;
    }

    private static bool PathsEqual(string a, string b) => string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);

    private static void TryDelete(string directory)
    {
        try
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // A stale folder is harmless: Latest() only considers complete, non-hidden checkpoints.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
