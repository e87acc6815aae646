using Microsoft.ML.Peft.Models.Configs;

namespace Microsoft.ML.Peft.Tests.Configs;

/// <summary>
/// Config parsing against the real stories260K config.json and the published config.json files of well-known
/// checkpoints (copied field for field into the test strings); defaults are those of the transformers config classes.
/// </summary>
[TestClass]
public sealed class ModelConfigTests
{
    [TestMethod]
    public void Stories260K_RealConfig()
    {
        var c = (LlamaConfig)ModelConfig.Load(TestPaths.Stories260K);
        Assert.AreEqual("llama", c.ModelType);
        CollectionAssert.AreEqual(new[] { "LlamaForCausalLM" }, c.Architectures.ToArray());
        Assert.AreEqual(64, c.HiddenSize);
        Assert.AreEqual(172, c.IntermediateSize);
        Assert.AreEqual(5, c.NumHiddenLayers);
        Assert.AreEqual(8, c.NumAttentionHeads);
        Assert.AreEqual(4, c.NumKeyValueHeads);
        Assert.AreEqual(8, c.HeadDim);
        Assert.AreEqual(512, c.VocabSize);
        Assert.AreEqual(512, c.MaxPositionEmbeddings);
        Assert.AreEqual("silu", c.HiddenAct);
        Assert.AreEqual(1e-5, c.RmsNormEps);
        Assert.AreEqual(10000.0, c.RopeTheta);
        Assert.IsNull(c.RopeScaling);
        Assert.IsFalse(c.AttentionBias || c.MlpBias || c.QkvBias || c.OutputProjectionBias);
        Assert.IsTrue(c.TieWordEmbeddings);
        Assert.AreEqual(1, c.BosTokenId);
        Assert.AreEqual(2, c.EosTokenId);
        Assert.IsNull(c.PadTokenId, "explicit null overrides any default");
        Assert.AreEqual("float32", c.TorchDtype);
        Assert.AreEqual(2, c.NumLabels);
        Assert.AreEqual("LABEL_1", c.Id2Label[1]);
        Assert.AreEqual(0, c.Label2Id["LABEL_0"]);
        Assert.IsFalse(c.UsesSlidingWindow(0));
        StringAssert.EndsWith(c.SourcePath, "config.json");
    }

    [TestMethod]
    public void BertTiny_WithoutModelType_IsInferredFromThePath_AndGetsBertDefaults()
    {
        // prajjwal1/bert-tiny's config.json has no model_type and no architectures.
        const string json = """
            {"hidden_size": 128, "hidden_act": "gelu", "initializer_range": 0.02, "vocab_size": 30522, "hidden_dropout_prob": 0.1,
             "num_attention_heads": 2, "type_vocab_size": 2, "max_position_embeddings": 512, "num_hidden_layers": 2,
             "intermediate_size": 512, "attention_probs_dropout_prob": 0.1}
            """;
        var c = (BertConfig)ModelConfig.Parse(json, "models--prajjwal1--bert-tiny/snapshots/abc/config.json");
        Assert.AreEqual("bert", c.ModelType);
        Assert.AreEqual(2, c.NumHiddenLayers);
        Assert.AreEqual(512, c.IntermediateSize);
        Assert.AreEqual(128, c.HiddenSize);
        Assert.AreEqual(64, c.HeadDim);
        Assert.AreEqual(1e-12, c.LayerNormEps, "BertConfig default");
        Assert.AreEqual(0, c.PadTokenId, "BertConfig default");
        Assert.AreEqual("absolute", c.PositionEmbeddingType);
        Assert.IsNull(c.ClassifierDropout);
        Assert.IsTrue(c.TieWordEmbeddings);
    }

    [TestMethod]
    public void BertPresets_MatchTheMiniatureTable()
    {
        (BertConfig Config, int Layers, int Hidden, int Heads)[] table =
        [
            (BertConfig.Tiny, 2, 128, 2), (BertConfig.Mini, 4, 256, 4), (BertConfig.Small, 4, 512, 8),
            (BertConfig.Medium, 8, 512, 8), (BertConfig.Base, 12, 768, 12),
        ];
        foreach (var (c, layers, hidden, heads) in table)
        {
            Assert.AreEqual(layers, c.NumHiddenLayers);
            Assert.AreEqual(hidden, c.HiddenSize);
            Assert.AreEqual(heads, c.NumAttentionHeads);
            Assert.AreEqual(4 * hidden, c.IntermediateSize);
            Assert.AreEqual(64, c.HeadDim);
            c.Validate("preset");
        }
    }

    [TestMethod]
    public void RobertaBase()
    {
        const string json = """
            {"architectures": ["RobertaForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0, "eos_token_id": 2,
             "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
             "layer_norm_eps": 1e-05, "max_position_embeddings": 514, "model_type": "roberta", "num_attention_heads": 12,
             "num_hidden_layers": 12, "pad_token_id": 1, "type_vocab_size": 1, "vocab_size": 50265}
            """;
        var c = (RobertaConfig)ModelConfig.Parse(json);
        Assert.AreEqual(514, c.MaxPositionEmbeddings);
        Assert.AreEqual(1, c.TypeVocabSize);
        Assert.AreEqual(1e-5, c.LayerNormEps);
        Assert.AreEqual(1, c.PadTokenId);
        Assert.AreEqual(0, c.BosTokenId);
        Assert.AreEqual(2, c.EosTokenId);
        var defaults = (RobertaConfig)ModelConfig.Parse("""{"model_type": "roberta"}""");
        Assert.AreEqual(50265, defaults.VocabSize);
        Assert.AreEqual(1, defaults.PadTokenId);
        Assert.AreEqual(1e-12, defaults.LayerNormEps, "RobertaConfig inherits BERT's default eps");
    }

    [TestMethod]
    public void DistilBertSst2_LabelsAndAliases()
    {
        const string json = """
            {"activation": "gelu", "architectures": ["DistilBertForSequenceClassification"], "attention_dropout": 0.1, "dim": 768,
             "dropout": 0.1, "finetuning_task": "sst-2", "hidden_dim": 3072, "id2label": {"0": "NEGATIVE", "1": "POSITIVE"},
             "initializer_range": 0.02, "label2id": {"NEGATIVE": 0, "POSITIVE": 1}, "max_position_embeddings": 512,
             "model_type": "distilbert", "n_heads": 12, "n_layers": 6, "output_past": true, "pad_token_id": 0, "qa_dropout": 0.1,
             "seq_classif_dropout": 0.2, "sinusoidal_pos_embds": false, "tie_weights_": true, "vocab_size": 30522}
            """;
        var c = (DistilBertConfig)ModelConfig.Parse(json);
        Assert.AreEqual(768, c.Dim);
        Assert.AreEqual(c.Dim, c.HiddenSize);
        Assert.AreEqual(6, c.NLayers);
        Assert.AreEqual(c.NLayers, c.NumHiddenLayers);
        Assert.AreEqual(12, c.NHeads);
        Assert.AreEqual(3072, c.HiddenDim);
        Assert.IsFalse(c.SinusoidalPosEmbds);
        Assert.AreEqual(0.2, c.SeqClassifDropout);
        Assert.AreEqual(2, c.NumLabels);
        Assert.AreEqual("POSITIVE", c.Id2Label[1]);
        Assert.AreEqual(0, c.Label2Id["NEGATIVE"]);
        var three = c with { NumLabels = 3 };
        Assert.AreEqual(3, three.NumLabels);
        Assert.AreEqual("LABEL_2", three.Id2Label[2], "changing num_labels regenerates the labels, as transformers does");
        Assert.AreEqual(2, three.Label2Id["LABEL_2"]);
    }

    [TestMethod]
    public void Mistral7B()
    {
        const string json = """
            {"architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096,
             "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
             "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
             "sliding_window": 4096, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.34.0.dev0",
             "use_cache": true, "vocab_size": 32000}
            """;
        var c = (LlamaConfig)ModelConfig.Parse(json);
        Assert.AreEqual("mistral", c.ModelType);
        Assert.AreEqual(8, c.NumKeyValueHeads);
        Assert.AreEqual(128, c.HeadDim);
        Assert.AreEqual(4096, c.SlidingWindow);
        Assert.IsTrue(c.UsesSlidingWindow(0));
        Assert.IsFalse(c.QkvBias);
        var defaults = (LlamaConfig)ModelConfig.Parse("""{"model_type": "mistral"}""");
        Assert.AreEqual(14336, defaults.IntermediateSize);
        Assert.AreEqual(8, defaults.NumKeyValueHeads, "MistralConfig default");
        Assert.AreEqual(131072, defaults.MaxPositionEmbeddings);
        Assert.AreEqual(4096, defaults.SlidingWindow);
        Assert.IsNull(((LlamaConfig)ModelConfig.Parse("""{"model_type": "mistral", "sliding_window": null}""")).SlidingWindow);
    }

    [TestMethod]
    public void Qwen2_HasQkvBiasAndOptionalSlidingWindow()
    {
        const string json = """
            {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151643,
             "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02, "intermediate_size": 4864,
             "max_position_embeddings": 131072, "max_window_layers": 24, "model_type": "qwen2", "num_attention_heads": 14,
             "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
             "sliding_window": 131072, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.40.1",
             "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}
            """;
        var c = (LlamaConfig)ModelConfig.Parse(json);
        Assert.AreEqual(64, c.HeadDim);
        Assert.AreEqual(2, c.NumKeyValueHeads);
        Assert.AreEqual(1_000_000.0, c.RopeTheta);
        Assert.IsTrue(c.QkvBias);
        Assert.IsFalse(c.OutputProjectionBias);
        Assert.IsNull(c.SlidingWindow, "use_sliding_window=false disables the window");
        Assert.IsTrue(c.TieWordEmbeddings);
        var windowed = (LlamaConfig)ModelConfig.Parse(json.Replace("\"use_sliding_window\": false", "\"use_sliding_window\": true", StringComparison.Ordinal));
        Assert.IsFalse(windowed.UsesSlidingWindow(23));
        Assert.IsTrue(windowed.UsesSlidingWindow(24));
        var defaults = (LlamaConfig)ModelConfig.Parse("""{"model_type": "qwen2"}""");
        Assert.AreEqual(151936, defaults.VocabSize);
        Assert.AreEqual(32, defaults.NumKeyValueHeads);
        Assert.IsNull(defaults.BosTokenId);
        Assert.IsNull(defaults.EosTokenId);
    }

    [TestMethod]
    public void Llama31_RopeScalingAndEosList()
    {
        const string json = """
            {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 128000,
             "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
             "intermediate_size": 14336, "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
             "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
             "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192,
             "rope_type": "llama3"}, "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 128256}
            """;
        var c = (LlamaConfig)ModelConfig.Parse(json);
        Assert.AreEqual(new RopeScaling(RopeScalingType.Llama3, 8.0, 1.0, 4.0, 8192), c.RopeScaling);
        Assert.AreEqual(500000.0, c.RopeTheta);
        CollectionAssert.AreEqual(new[] { 128001, 128008, 128009 }, c.EosTokenIds.ToArray());
        Assert.AreEqual(128001, c.EosTokenId);
        Assert.IsFalse(c.TieWordEmbeddings);

        var linear = (LlamaConfig)ModelConfig.Parse("""{"model_type": "llama", "rope_scaling": {"type": "linear", "factor": 2.0}}""");
        Assert.AreEqual(new RopeScaling(RopeScalingType.Linear, 2.0), linear.RopeScaling);
        var dynamic = (LlamaConfig)ModelConfig.Parse("""{"model_type": "llama", "rope_scaling": {"rope_type": "dynamic", "factor": 4}}""");
        Assert.AreEqual(RopeScalingType.Dynamic, dynamic.RopeScaling!.Type);
        var v5 = (LlamaConfig)ModelConfig.Parse("""{"model_type": "llama", "rope_parameters": {"rope_type": "default", "rope_theta": 123.0}}""");
        Assert.AreEqual(123.0, v5.RopeTheta);
        Assert.IsNull(v5.RopeScaling);
        var llamaDefaults = (LlamaConfig)ModelConfig.Parse("""{"model_type": "llama"}""");
        Assert.AreEqual(32, llamaDefaults.NumKeyValueHeads, "defaults to num_attention_heads");
        Assert.AreEqual(1e-6, llamaDefaults.RmsNormEps);
        Assert.AreEqual(2048, llamaDefaults.MaxPositionEmbeddings);
        Assert.IsFalse(llamaDefaults.TieWordEmbeddings);
    }

    [TestMethod]
    public void Gpt2Small()
    {
        const string json = """
            {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1, "bos_token_id": 50256,
             "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
             "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1,
             "summary_activation": null, "summary_first_dropout": 0.1, "summary_proj_to_labels": true, "summary_type": "cls_index",
             "summary_use_proj": true, "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}}, "vocab_size": 50257}
            """;
        var c = (Gpt2Config)ModelConfig.Parse(json);
        Assert.AreEqual(768, c.NEmbd);
        Assert.AreEqual(c.NEmbd, c.HiddenSize);
        Assert.AreEqual(12, c.NLayer);
        Assert.AreEqual(12, c.NHead);
        Assert.AreEqual(1024, c.NPositions);
        Assert.AreEqual(3072, c.InnerSize);
        Assert.AreEqual(64, c.HeadDim);
        Assert.AreEqual("gelu_new", c.ActivationFunction);
        Assert.AreEqual(1e-5, c.LayerNormEpsilon);
        Assert.IsTrue(c.TieWordEmbeddings);
        Assert.AreEqual(50256, c.EosTokenId);
    }

    [TestMethod]
    public void Pythia70M()
    {
        const string json = """
            {"architectures": ["GPTNeoXForCausalLM"], "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "gelu", "hidden_size": 512,
             "initializer_range": 0.02, "intermediate_size": 2048, "layer_norm_eps": 1e-05, "max_position_embeddings": 2048,
             "model_type": "gpt_neox", "num_attention_heads": 8, "num_hidden_layers": 6, "rotary_emb_base": 10000, "rotary_pct": 0.25,
             "tie_word_embeddings": false, "torch_dtype": "float16", "transformers_version": "4.24.0", "use_cache": true,
             "use_parallel_residual": true, "vocab_size": 50304}
            """;
        var c = (GptNeoXConfig)ModelConfig.Parse(json);
        Assert.AreEqual(64, c.HeadDim);
        Assert.AreEqual(16, c.RotaryDims);
        Assert.AreEqual(10000, c.RotaryEmbBase);
        Assert.IsTrue(c.UseParallelResidual);
        Assert.IsTrue(c.AttentionBias);
        Assert.AreEqual(0, c.EosTokenId);
        Assert.AreEqual("float16", c.TorchDtype);
    }

    [TestMethod]
    [DataRow("""{"model_type": "t5"}""", "model_type", "'t5' is not supported; supported: bert, roberta")]
    [DataRow("""{"vocab_size": 5}""", "model_type", "cannot be inferred")]
    [DataRow("""{"model_type": "bert", "hidden_size": "768"}""", "hidden_size", "must be an integer, found \"768\"")]
    [DataRow("""{"model_type": "bert", "hidden_size": 100, "num_attention_heads": 12}""", "hidden_size", "100 is not a multiple of num_attention_heads = 12")]
    [DataRow("""{"model_type": "llama", "num_key_value_heads": 5}""", "num_attention_heads", "not a multiple of num_key_value_heads = 5")]
    [DataRow("""{"model_type": "llama", "num_hidden_layers": 0}""", "num_hidden_layers", "must be positive")]
    [DataRow("""{"model_type": "llama", "rope_scaling": {"rope_type": "yarn", "factor": 4}}""", "rope_scaling", "'yarn' is not supported")]
    [DataRow("""{"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8}}""", "rope_scaling", "needs 'low_freq_factor'")]
    [DataRow("""{"model_type": "llama", "rope_scaling": {"type": "linear", "factor": 0.5}}""", "rope_scaling", "factor must be ≥ 1")]
    [DataRow("""{"model_type": "bert", "problem_type": "ranking"}""", "problem_type", "'ranking' is not one of")]
    [DataRow("""{"model_type": "bert", "id2label": {"zero": "A"}}""", "id2label", "key 'zero' is not an integer")]
    [DataRow("""{"model_type": "bert", "id2label": {"0": "A", "5": "B"}}""", "id2label", "label id 5 is outside 0..1")]
    [DataRow("""{"model_type": "gpt2", "eos_token_id": [1, "x"]}""", "eos_token_id", "integer or a list of integers")]
    public void BadConfig_IsRejectedNamingFileAndField(string json, string field, string message)
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelConfig.Parse(json, "/models/x/config.json"));
        Assert.AreEqual(field, e.Field);
        Assert.AreEqual("/models/x/config.json", e.FilePath);
        StringAssert.Contains(e.Message, message);
        StringAssert.StartsWith(e.Message, "/models/x/config.json: field '" + field + "'");
    }

    [TestMethod]
    public void NotJson_AndMissingFile()
    {
        StringAssert.Contains(Assert.Throws<ModelConfigException>(() => ModelConfig.Parse("{", "c.json")).Message, "c.json: not valid JSON");
        Assert.Throws<FileNotFoundException>(() => ModelConfig.Load("/nonexistent/folder"));
    }
}
