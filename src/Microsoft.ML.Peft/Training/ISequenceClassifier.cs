using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Training;

/// <summary>
/// What the training loop and the ML.NET transformer need from a sequence-classification model: its module tree
/// (trainable parameters, train/eval mode) and a forward pass from a padded token batch to class logits.
/// </summary>
internal interface ISequenceClassifier
{
    /// <summary>The root of the module tree (parameters named as in the checkpoint).</summary>
    Module Module { get; }

    /// <summary>Number of classes (logit columns).</summary>
    int NumLabels { get; }

    /// <summary>
    /// The random streams training draws from (dropout masks) whose positions a checkpoint must save and restore for
    /// a resumed run to be bit-identical.
    /// </summary>
    IReadOnlyList<Generator> RandomStreams { get; }

    /// <summary>Logits [batch, NumLabels] for a padded batch; records autograd when parameters require grad.</summary>
    Tensor Forward(TokenBatch batch);
}
