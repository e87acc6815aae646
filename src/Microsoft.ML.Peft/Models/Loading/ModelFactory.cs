using Microsoft.ML.Peft.Models.Bert;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.DistilBert;
using Microsoft.ML.Peft.Models.Gpt2;
using Microsoft.ML.Peft.Models.GptNeoX;
using Microsoft.ML.Peft.Models.Llama;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Loading;

/// <summary>Builds the module tree (over placeholders) for a config and task: transformers' Auto classes in one switch.</summary>
internal static class ModelFactory
{
    public static PretrainedModel Build(ModelConfig config, ModelTask task, Generator dropoutGenerator)
    {
        string where = config.SourcePath ?? "config.json";
        return (config, task) switch
        {
            (RobertaConfig c, ModelTask.SequenceClassification) => new RobertaForSequenceClassification(c, dropoutGenerator),
            (RobertaConfig c, ModelTask.TokenClassification) =>
                new EncoderForTokenClassification(c, new BertModel(c, dropoutGenerator, addPoolingLayer: false), "roberta", ClassifierDropout(c), dropoutGenerator),
            (BertConfig c, ModelTask.SequenceClassification) => new BertForSequenceClassification(c, dropoutGenerator),
            (BertConfig c, ModelTask.TokenClassification) =>
                new EncoderForTokenClassification(c, new BertModel(c, dropoutGenerator, addPoolingLayer: false), "bert", ClassifierDropout(c), dropoutGenerator),
            (DistilBertConfig c, ModelTask.SequenceClassification) => new DistilBertForSequenceClassification(c, dropoutGenerator),
            (DistilBertConfig c, ModelTask.TokenClassification) =>
                new EncoderForTokenClassification(c, new DistilBertModel(c, dropoutGenerator), "distilbert", (float)c.Dropout, dropoutGenerator),
            (LlamaConfig c, ModelTask.SequenceClassification) => new DecoderForSequenceClassification(c, new LlamaModel(c, dropoutGenerator), "model"),
            (LlamaConfig c, ModelTask.TokenClassification) =>
                new DecoderForTokenClassification(c, new LlamaModel(c, dropoutGenerator), "model", "score", DecoderClassifierDropout, dropoutGenerator),
            (LlamaConfig c, ModelTask.CausalLM) => new CausalLanguageModel(c, new LlamaModel(c, dropoutGenerator), "model", "lm_head", c.TieWordEmbeddings),
            (Gpt2Config c, ModelTask.SequenceClassification) => new DecoderForSequenceClassification(c, new Gpt2Model(c, dropoutGenerator), "transformer"),
            (Gpt2Config c, ModelTask.TokenClassification) =>
                new DecoderForTokenClassification(c, new Gpt2Model(c, dropoutGenerator), "transformer", "classifier", DecoderClassifierDropout, dropoutGenerator),
            (Gpt2Config c, ModelTask.CausalLM) => new CausalLanguageModel(c, new Gpt2Model(c, dropoutGenerator), "transformer", "lm_head", c.TieWordEmbeddings),
            (GptNeoXConfig c, ModelTask.SequenceClassification) => new DecoderForSequenceClassification(c, new GptNeoXModel(c, dropoutGenerator), "gpt_neox"),
            (GptNeoXConfig c, ModelTask.TokenClassification) =>
                new DecoderForTokenClassification(c, new GptNeoXModel(c, dropoutGenerator), "gpt_neox", "classifier", (float)c.ClassifierDropout, dropoutGenerator),
            (GptNeoXConfig c, ModelTask.CausalLM) => new CausalLanguageModel(c, new GptNeoXModel(c, dropoutGenerator), "gpt_neox", "embed_out", c.TieWordEmbeddings),
            _ => throw new ModelConfigException(where, "model_type", $"'{config.ModelType}' has no {task} model here; " +
                "encoders (bert, roberta, distilbert) support SequenceClassification and TokenClassification, decoders (llama, mistral, qwen2, gpt2, gpt_neox) SequenceClassification, TokenClassification and CausalLM"),
        };
    }

    /// <summary>
    /// The head a config's <c>architectures</c> names: *ForSequenceClassification, *ForTokenClassification,
    /// *ForCausalLM / *LMHeadModel; decoders without one default to the language-modelling head.
    /// </summary>
    public static ModelTask InferTask(ModelConfig config)
    {
        foreach (string architecture in config.Architectures)
        {
            if (architecture.EndsWith("ForSequenceClassification", StringComparison.Ordinal)) return ModelTask.SequenceClassification;
            if (architecture.EndsWith("ForTokenClassification", StringComparison.Ordinal)) return ModelTask.TokenClassification;
            if (architecture.EndsWith("ForCausalLM", StringComparison.Ordinal) || architecture.EndsWith("LMHeadModel", StringComparison.Ordinal)) return ModelTask.CausalLM;
        }
        if (config is LlamaConfig or Gpt2Config or GptNeoXConfig) return ModelTask.CausalLM;
        throw new ModelConfigException(config.SourcePath ?? "config.json", "architectures",
            $"[{string.Join(", ", config.Architectures)}] names no task head this library builds for '{config.ModelType}'; set ModelLoadOptions.Task (e.g. SequenceClassification)");
    }

    /// <summary>
    /// transformers' dropout before the Llama/Mistral/Qwen2 and GPT-2 token heads: config.classifier_dropout, else
    /// config.hidden_dropout, else 0.1. Their configs define neither field, so 0.1 unless config.json adds one (not read
    /// here; GPT-NeoX's config defines classifier_dropout and it is read).
    /// </summary>
    private const float DecoderClassifierDropout = 0.1f;

    private static float ClassifierDropout(BertConfig c) => (float)(c.ClassifierDropout ?? c.HiddenDropoutProb);
}
