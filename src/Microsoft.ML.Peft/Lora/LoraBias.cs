namespace Microsoft.ML.Peft.Lora;

/// <summary>Which base-model biases LoRA trains (PEFT's <c>bias</c> field).</summary>
public enum LoraBias
{
    /// <summary>"none": no bias is trained; disabling the adapter reproduces the base model exactly.</summary>
    None,

    /// <summary>"all": every parameter whose name contains "bias" is trained and saved with the adapter.</summary>
    All,

    /// <summary>"lora_only": the biases of the LoRA-wrapped layers are trained and saved.</summary>
    LoraOnly,
}

/// <summary>JSON spellings of <see cref="LoraBias"/>.</summary>
internal static class LoraBiasNames
{
    public static string ToJson(LoraBias bias) => bias switch
    {
        LoraBias.None => "none",
        LoraBias.All => "all",
        LoraBias.LoraOnly => "lora_only",
        _ => throw new ArgumentOutOfRangeException(nameof(bias), bias, "unknown bias mode"),
    };

    public static LoraBias? Parse(string text) => text switch
    {
        "none" => LoraBias.None,
        "all" => LoraBias.All,
        "lora_only" => LoraBias.LoraOnly,
        _ => null,
    };
}
