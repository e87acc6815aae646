using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft.Tests.Training;

[TestClass]
public sealed class OptimizerGroupsTests
{
    private static readonly Tensor Matrix1 = Tensor.Zeros(2, 3), Vector1 = Tensor.Zeros(3), Matrix2 = Tensor.Zeros(3, 2), Vector2 = Tensor.Zeros(2);

    private static readonly (string Name, Tensor Parameter)[] Trainable =
        [("a.weight", Matrix1), ("a.bias", Vector1), ("b.weight", Matrix2), ("b.bias", Vector2)];

    [TestMethod]
    public void NoMethodGroups_GiveMatricesThenVectorsWithoutDecay_InTrainableOrder()
    {
        var groups = OptimizerGroups.Build(Trainable, null);
        Assert.AreEqual(2, groups.Count);
        CollectionAssert.AreEqual(new[] { Matrix1, Matrix2 }, groups[0].Parameters.ToArray());
        CollectionAssert.AreEqual(new[] { Vector1, Vector2 }, groups[1].Parameters.ToArray());
        Assert.AreEqual((null, 1.0), (groups[0].WeightDecay, groups[0].LearningRateScale));
        Assert.AreEqual((0.0, 1.0), (groups[1].WeightDecay, groups[1].LearningRateScale));
    }

    [TestMethod]
    public void MethodGroups_KeepTheirScaleAndDecay_VectorsNeverDecay()
    {
        var groups = OptimizerGroups.Build(Trainable, [new ParameterGroup([Matrix1]), new ParameterGroup([Vector2, Matrix2, Vector1], weightDecay: 0.5, learningRateScale: 16)]);
        Assert.AreEqual(4, groups.Count);
        CollectionAssert.AreEqual(new[] { Matrix1 }, groups[0].Parameters.ToArray());
        Assert.AreEqual(0, groups[1].Parameters.Count);
        CollectionAssert.AreEqual(new[] { Matrix2 }, groups[2].Parameters.ToArray());
        CollectionAssert.AreEqual(new[] { Vector1, Vector2 }, groups[3].Parameters.ToArray(), "trainable order, not the method's");
        Assert.AreEqual((0.5, 16.0), (groups[2].WeightDecay, groups[2].LearningRateScale));
        Assert.AreEqual((0.0, 16.0), (groups[3].WeightDecay, groups[3].LearningRateScale));
    }

    [TestMethod]
    public void MethodGroups_ThatMissOrAddParameters_AreRejectedByName()
    {
        var missing = Assert.ThrowsExactly<InvalidOperationException>(() => OptimizerGroups.Build(Trainable, [new ParameterGroup([Matrix1, Vector1, Matrix2])]));
        StringAssert.Contains(missing.Message, "b.bias");
        var extra = Assert.ThrowsExactly<InvalidOperationException>(() => OptimizerGroups.Build(Trainable, [new ParameterGroup([Matrix1, Vector1, Matrix2, Vector2, Tensor.Zeros(5)])]));
        StringAssert.Contains(extra.Message, "not trainable");
        var twice = Assert.ThrowsExactly<InvalidOperationException>(() => OptimizerGroups.Build(Trainable, [new ParameterGroup([Matrix1, Vector1]), new ParameterGroup([Matrix1, Matrix2, Vector2])]));
        StringAssert.Contains(twice.Message, "twice");
    }
}
