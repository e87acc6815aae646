using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML.Peft.Generation;
using Microsoft.ML.Peft.IO;

namespace Microsoft.ML.Peft.InstructionTuning;

/// <summary>
/// Everything besides the adapter weights that a saved <see cref="CausalLmFineTuningTransformer"/> needs:
/// <c>causal_lm.json</c> beside <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> — columns, prompt
/// template, sequence length, generation settings and the base model's identity (path or hub id, SHA-256 of its
/// weights files, quantization settings).
/// </summary>
internal sealed class CausalLmManifest
{
    public const string FileName = "causal_lm.json";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public int Format { get; set; } = 1;

    public string InstructionColumn { get; set; } = "";

    public string? InputColumn { get; set; }

    public string ResponseColumn { get; set; } = "";

    public string GeneratedColumn { get; set; } = "";

    public string TemplateWithInput { get; set; } = "";

    public string? TemplateWithoutInput { get; set; }

    public int MaxSequenceLength { get; set; }

    /// <summary>The id appended to every training response.</summary>
    public int EndOfSequenceId { get; set; }

    public GenerationOptions Generation { get; set; } = new();

    public BaseModelReference BaseModel { get; set; } = new();

    public void Save(string folder) => AtomicFile.WriteAllText(Path.Combine(folder, FileName), JsonSerializer.Serialize(this, Json));

    public static CausalLmManifest Load(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{FileName} is missing in {folder}", path);
        CausalLmManifest manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<CausalLmManifest>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path} is empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not a valid causal-LM manifest: {e.Message}", e);
        }
        if (manifest.Format != 1) throw new InvalidDataException($"{path}: unsupported format {manifest.Format}");
        if (string.IsNullOrEmpty(manifest.InstructionColumn) || string.IsNullOrEmpty(manifest.GeneratedColumn) || string.IsNullOrEmpty(manifest.ResponseColumn))
            throw new InvalidDataException($"{path}: a column name is missing");
        if (manifest.MaxSequenceLength < 2) throw new InvalidDataException($"{path}: invalid max_sequence_length {manifest.MaxSequenceLength}");
        if (string.IsNullOrEmpty(manifest.BaseModel.NameOrPath)) throw new InvalidDataException($"{path}: the base model is not named");
        return manifest;
    }
}
