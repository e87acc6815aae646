using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// Stands in for a plain <see cref="Linear"/> head (e.g. a sequence classifier's output layer) so its weight and bias
/// get a posterior block too; computes exactly x·Wᵀ + b through <see cref="ProbedMatrix.Apply"/>.
/// </summary>
internal sealed class ProbedHeadLayer(string path, Linear head) : LinearLayer
{
    public Linear Original { get; } = head;

    public ProbedMatrix Matrix { get; } = new(path, head.Weight, head.Bias);

    public override int InFeatures => Original.InFeatures;

    public override int OutFeatures => Original.OutFeatures;

    public override Tensor Forward(Tensor input) => Matrix.Apply(input);
}
