using Microsoft.ML.Peft.AdaLora;
using Microsoft.ML.Peft.Adapters;
using Microsoft.ML.Peft.AdaptionPrompt;
using Microsoft.ML.Peft.GaLore;
using Microsoft.ML.Peft.IA3;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Lycoris;
using Microsoft.ML.Peft.PrefixTuning;
using Microsoft.ML.Peft.PromptTuning;
using Microsoft.ML.Peft.PTuning;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Quantization;
using Microsoft.ML.Peft.Reft;
using Microsoft.ML.Peft.Selective;
using Microsoft.ML.Peft.Tuners;
using Microsoft.ML.Peft.Vera;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// One method of the SST-2 comparison (docs/METHODS.md): the PEFT config trained by PeftTextClassification, plus the
/// settings that are not part of a config (LoRA+'s learning-rate ratio, QLoRA's 4-bit base, GaLore's optimizer).
/// </summary>
/// <param name="Config">The method's config (the head is added as modules_to_save by the trainer).</param>
/// <param name="Summary">One line saying what trains, for the RESULT line and METHODS.md.</param>
/// <param name="LoraPlusRatio">LoRA+ ratio λ (B at λ·lr), or null.</param>
/// <param name="Quantization">QLoRA: the base's linear layers are quantized with these settings, or null.</param>
/// <param name="GaLore">GaLore: the trainer's AdamW keeps its moments in low-rank gradient projections, or null.</param>
internal sealed record MethodRecipe(PeftConfig Config, string Summary, double? LoraPlusRatio = null, QuantizationOptions? Quantization = null,
    GaLoreOptions? GaLore = null);

/// <summary>
/// The method configurations of the comparison on stories260K (Llama: hidden 64, 5 layers, q/o 64→64, k/v 64→32,
/// gate/up 64→172, down 172→64, no bias vectors). PEFT's defaults where PEFT has the method; otherwise the paper's
/// usual setting scaled to a parameter budget near LoRA r8 on q,v (8,960 weights) so rows compare.
/// </summary>
internal static class MethodSst2Configs
{
    /// <summary>Every method name the command accepts, in the order of the METHODS.md table.</summary>
    public static readonly IReadOnlyList<string> Names =
    [
        "lora", "ia3", "prompt", "prefix", "prefix-mlp", "ptuning-mlp", "ptuning-lstm", "llama-adapter",
        "houlsby", "parallel", "sparse-adapter", "fusion", "bitfit", "head-only", "last-2", "layernorm", "full",
        "far", "pafi", "diff-pruning", "dora", "loraplus", "rslora", "pissa", "olora", "adalora", "vera", "moslora",
        "loha", "lokr", "qlora", "galore", "loreft", Svgd,
    ];

    /// <summary>SVGD-LoRA: not a PEFT config but a trainer over particles of the lora row's adapters.</summary>
    public const string Svgd = "svgd";

    /// <summary>SVGD-LoRA's particle count (the ensembles benchmark's n).</summary>
    public const int SvgdParticles = 4;

    /// <summary>The linear layers of a Llama block (PEFT's "all-linear" without the head), for the selective deltas.</summary>
    private static readonly string[] AllBlockLinears = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// <summary>Houlsby placement on Llama: after attention's and the MLP's output projections.</summary>
    private static readonly string[] HoulsbyTargets = ["o_proj", "down_proj"];

    /// <summary>Bottleneck width of the serial (Houlsby) adapters: 8 → 10,960 weights, near LoRA's 8,960.</summary>
    public const int HoulsbyBottleneck = 8;

    /// <summary>GaLore's projection rank on stories260K (see the "galore" recipe).</summary>
    private const int GaLoreRank = 16;

    /// <summary>
    /// The recipe of <paramref name="method"/>. <paramref name="totalSteps"/> sizes AdaLoRA's schedule;
    /// <paramref name="fusionSources"/> are the adapter folders AdapterFusion mixes (fusion only).
    /// </summary>
    /// <exception cref="ArgumentException">An unknown method name (the message lists the known ones).</exception>
    public static MethodRecipe Build(string method, int totalSteps, IReadOnlyList<string>? fusionSources = null) => method switch
    {
        "lora" => new(Lora(), "LoRA r=8 alpha=16 dropout 0.05 on q_proj,v_proj (the sample's)"),
        "ia3" => new(new IA3Config(), "(IA)3 PEFT defaults for llama: k_proj,v_proj (output) + down_proj (input), ones init"),
        "prompt" => new(new PromptTuningConfig { NumVirtualTokens = 8, Init = PromptTuningInit.Random }, "prompt tuning, 8 virtual tokens, RANDOM init N(0,1)"),
        "prefix" => new(new PrefixTuningConfig { NumVirtualTokens = 8 }, "prefix tuning (P-tuning v2), 8 tokens, no projection"),
        "prefix-mlp" => new(new PrefixTuningConfig { NumVirtualTokens = 8, PrefixProjection = true }, "prefix tuning, 8 tokens, prefix_projection (h = token_dim)"),
        "ptuning-mlp" => new(new PromptEncoderConfig { NumVirtualTokens = 8, ReparameterizationType = PromptEncoderReparameterization.Mlp }, "P-tuning, 8 tokens, MLP encoder (h = token_dim)"),
        "ptuning-lstm" => new(new PromptEncoderConfig { NumVirtualTokens = 8, ReparameterizationType = PromptEncoderReparameterization.Lstm }, "P-tuning, 8 tokens, bi-LSTM + MLP encoder (h = token_dim, 2 layers)"),
        "llama-adapter" => new(new AdaptionPromptConfig { AdapterLen = 10, AdapterLayers = 5 }, "LLaMA-Adapter, adapter_len 10 in all 5 layers, zero gates"),
        "houlsby" => new(Houlsby(HoulsbyBottleneck, sparsity: 0), $"serial (Houlsby) adapters b={HoulsbyBottleneck}, relu, after o_proj and down_proj"),
        "parallel" => new(new BottleneckAdapterConfig
        {
            TargetModules = new[] { "down_proj" },
            ParallelInputModules = new[] { "up_proj" },
            Placement = AdapterPlacement.Parallel,
            BottleneckSize = 16,
            Scaling = 4,
            NonLinearity = "relu",
        }, "parallel adapter b=16, relu, scaling 4 (He et al.), beside the MLP"),
        "sparse-adapter" => new(Houlsby(2 * HoulsbyBottleneck, sparsity: 0.5), $"serial adapters b={2 * HoulsbyBottleneck}, half of each matrix pruned at init (≈ the nonzeros of b={HoulsbyBottleneck})"),
        "fusion" => new(new AdapterFusionConfig { AdapterPaths = fusionSources is { Count: >= 2 } ? [.. fusionSources] : throw new ArgumentException("fusion needs its source adapters (MR, SUBJ)", nameof(fusionSources)) },
            "AdapterFusion over frozen serial adapters trained on MR and SUBJ (b=8); only the fusion attention trains"),
        "bitfit" => new(HeadOnly(), "BitFit = head only: stories260K (Llama) has no bias vectors, so BitFit has nothing to train but the new head"),
        "head-only" => new(HeadOnly(), "linear probe: the score head only"),
        "last-2" => new(SelectiveConfig.LastLayers(2, "layers"), "every parameter of the top 2 of 5 layers (+ head)"),
        "layernorm" => new(SelectiveConfig.LayerNormTuning(), "gains of every RMSNorm (+ head)"),
        "full" => new(SelectiveConfig.Full(), "full fine-tuning (embeddings included)"),
        "far" => new(new FarConfig { TargetModules = AllBlockLinears, TrainableFraction = 0.1 }, "FaR: 10% of the output rows (largest L1) of every block linear"),
        "pafi" => new(new PafiConfig { TargetModules = AllBlockLinears, TrainableFraction = 0.01 }, "PaFi: the 1% smallest-magnitude weights of every block linear"),
        "diff-pruning" => new(new DiffPruningConfig { TargetModules = AllBlockLinears }, "diff pruning (dense delta + hard-concrete gates, L0 1e-5, keep 0.5%) on every block linear"),
        "dora" => new(Lora(l => l.UseDora = true), "DoRA r=8 alpha=16 on q_proj,v_proj (norm detached)"),
        "loraplus" => new(Lora(), "LoRA+ r=8 alpha=16 on q_proj,v_proj, B at 16x lr", LoraPlusRatio: LoraPlus.DefaultLrRatio),
        "rslora" => new(Lora(l => l.UseRsLora = true), "rsLoRA r=8 alpha=16 (scaling alpha/sqrt(r)) on q_proj,v_proj"),
        "pissa" => new(Lora(l => l.InitLoraWeights = LoraInit.Pissa), "PiSSA r=8 alpha=16 on q_proj,v_proj (exact SVD init)"),
        "olora" => new(Lora(l => l.InitLoraWeights = LoraInit.Olora), "OLoRA r=8 alpha=16 on q_proj,v_proj (QR init, base keeps the residual)"),
        "adalora" => new(AdaLora(totalSteps), "AdaLoRA init_r 12 -> target_r 8, alpha 16, q_proj,v_proj, tinit 10%, tfinal 30%, deltaT 10"),
        "vera" => new(new VeraConfig { TargetModules = new[] { "q_proj", "v_proj" } }, "VeRA r=256 (PEFT default), q_proj,v_proj, d_initial 0.1"),
        "moslora" => new(Lora(l => l.UseMixer = true), "MoSLoRA r=8 alpha=16 on q_proj,v_proj (r x r mixer)"),
        // LyCORIS's PEFT defaults (r 8, alpha 8); LoHa's two Hadamard-multiplied pairs hold twice LoRA r8's weights.
        "loha" => new(new LoHaConfig { TargetModules = new[] { "q_proj", "v_proj" } }, "LoHa r=8 alpha=8 (PEFT defaults) on q_proj,v_proj"),
        "lokr" => new(new LoKrConfig { TargetModules = new[] { "q_proj", "v_proj" } }, "LoKr r=8 alpha=8 (PEFT defaults: W1 full, W2 full where r is not small) on q_proj,v_proj"),
        "qlora" => new(Lora(), "QLoRA: NF4 + double quant, block 64 base; LoRA r=8 alpha=16 on q_proj,v_proj (as lora)",
            Quantization: new QuantizationOptions { Type = FourBitType.NF4, BlockSize = 64, DoubleQuant = true }),
        // GaLore's default rank 128 is above every stories260K matrix's smaller side (64), where the projection is the
        // identity and GaLore is plain AdamW; rank 16 keeps a quarter of the 64-wide side.
        "galore" => new(SelectiveConfig.Full(), $"GaLore: full fine-tuning, AdamW moments in rank-{GaLoreRank} projections of every linear weight's gradient (T 200, scale 0.25)",
            GaLore: new GaLoreOptions { Rank = GaLoreRank, UpdateProjectionGap = 200, Scale = 0.25 }),
        "loreft" => new(new ReftConfig { Layers = [0, 1, 2, 3, 4], LowRankDimension = 4, Positions = "f1+l1", Dropout = 0.05 },
            "LoReFT r=4 after all 5 blocks at the first and last token (f1+l1), dropout 0.05"),
        Svgd => new(Lora(), $"SVGD-LoRA: {SvgdParticles} particles of the lora row's adapters (+ head each), RBF kernel, median bandwidth, T = 1; mean probability"),
        _ => throw new ArgumentException($"unknown method '{method}'; known: {string.Join(", ", Names)}", nameof(method)),
    };

    /// <summary>The serial adapter the fusion's sources use (Houlsby b=8).</summary>
    public static BottleneckAdapterConfig Houlsby(int bottleneck, double sparsity) => new()
    {
        TargetModules = HoulsbyTargets,
        BottleneckSize = bottleneck,
        NonLinearity = "relu",
        Sparsity = sparsity,
    };

    private static LoraConfig Lora(Action<LoraConfig>? change = null)
    {
        var config = new LoraConfig { Rank = 8, Alpha = 16, Dropout = 0.05, TargetModules = new[] { "q_proj", "v_proj" } };
        change?.Invoke(config);
        return config;
    }

    /// <summary>
    /// PEFT has no default schedule for AdaLoRA (tinit = tfinal = 0); its examples warm up and finish on fixed ranks
    /// for a fraction of training, which is what this does in proportion to the run's length.
    /// </summary>
    private static AdaLoraConfig AdaLora(int totalSteps) => new()
    {
        InitR = 12,
        TargetR = 8,
        Alpha = 16,
        Dropout = 0.05,
        TargetModules = new[] { "q_proj", "v_proj" },
        TInit = (int)Math.Round(0.1 * totalSteps),
        TFinal = (int)Math.Round(0.3 * totalSteps),
        DeltaT = 10,
        TotalStep = totalSteps,
    };

    /// <summary>Head only: SEQ_CLS lets the trainer name the head as modules_to_save.</summary>
    private static SelectiveConfig HeadOnly()
    {
        var config = SelectiveConfig.HeadOnly();
        config.TaskType = "SEQ_CLS";
        return config;
    }
}
