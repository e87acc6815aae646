using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.ML;
using Microsoft.ML.Calibrators;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms;

namespace MLNet.StandIn.Tests;

/// <summary>
/// What ML.NET keeps internal must stay non-public in the stand-in (contract §1), so that code compiling against the
/// stand-in also compiles against the real package.
/// </summary>
[TestClass]
public sealed class ApiSurfaceTests
{
    private const BindingFlags Instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;

    private static bool HasCallableConstructor(Type type)
        => type.GetConstructors(Instance).Any(c => c.IsPublic || c.IsFamily || c.IsFamilyOrAssembly);

    [TestMethod]
    [DataRow(typeof(SchemaShape.Column))]
    [DataRow(typeof(ModelSaveContext))]
    [DataRow(typeof(TrainerInfo))]
    [DataRow(typeof(MulticlassClassificationMetrics))]
    [DataRow(typeof(BinaryClassificationMetrics))]
    [DataRow(typeof(CalibratedBinaryClassificationMetrics))]
    [DataRow(typeof(RegressionMetrics))]
    [DataRow(typeof(ConfusionMatrix))]
    [DataRow(typeof(DataOperationsCatalog))]
    [DataRow(typeof(DataOperationsCatalog.TrainTestData))]
    [DataRow(typeof(TrainCatalogBase))]
    [DataRow(typeof(TrainCatalogBase.CatalogInstantiatorBase))]
    [DataRow(typeof(TrainCatalogBase.CrossValidationResult<MulticlassClassificationMetrics>))]
    [DataRow(typeof(MulticlassClassificationCatalog.MulticlassClassificationTrainers))]
    [DataRow(typeof(TransformsCatalog.ConversionTransforms))]
    [DataRow(typeof(ModelOperationsCatalog))]
    [DataRow(typeof(ComponentCatalog))]
    [DataRow(typeof(ExtensionBaseAttribute))]
    [DataRow(typeof(PredictionEngine<object, object>))]
    [DataRow(typeof(RowToRowTransformerBase))]
    [DataRow(typeof(OneToOneTransformerBase))]
    [DataRow(typeof(TrivialEstimator<ColumnCopyingTransformer>))]
    [DataRow(typeof(ValueToKeyMappingEstimator))]
    [DataRow(typeof(ValueToKeyMappingTransformer))]
    [DataRow(typeof(KeyToValueMappingEstimator))]
    [DataRow(typeof(CalibratorEstimatorBase<PlattCalibrator>))]
    [DataRow(typeof(CalibratorTransformer<PlattCalibrator>))]
    [DataRow(typeof(PlattCalibrator))]
    [DataRow(typeof(DataViewType))]
    [DataRow(typeof(DataViewSchema))]
    [DataRow(typeof(DataViewSchema.Column))]
    [DataRow(typeof(TextLoader))]
    public void TypeHasNoPublicOrProtectedConstructor(Type type)
        => Assert.IsFalse(HasCallableConstructor(type), $"{type} exposes a constructor that ML.NET keeps internal");

    [TestMethod]
    public void ModelSaveContextExposesOnlyDispose()
    {
        var members = typeof(ModelSaveContext).GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly);
        CollectionAssert.AreEquivalent(new[] { "Dispose" }, members.Select(m => m.Name).ToArray());
    }

    [TestMethod]
    public void SchemaShapeHelpersStayInternal()
    {
        Assert.IsNull(typeof(SchemaShape).GetMethod("Create", BindingFlags.Public | BindingFlags.Static));
        Assert.IsNull(typeof(SchemaShape).GetMethod("TryFindColumn", BindingFlags.Public | BindingFlags.Instance));
        Assert.IsNull(typeof(SchemaShape.Column).GetMethod("IsCompatibleWith", BindingFlags.Public | BindingFlags.Instance));
        Assert.IsNull(typeof(SchemaShape.Column).GetMethod("GetTypeString", BindingFlags.Public | BindingFlags.Instance));
        // The catalog cannot hand its MLContext to extension methods (ML.NET keeps Environment private protected).
        Assert.AreEqual(0, typeof(TrainCatalogBase).GetProperties(BindingFlags.Public | BindingFlags.Instance).Length);
    }

    [TestMethod]
    public void StandInGrantsInternalsOnlyToItsOwnTests()
    {
        var friends = typeof(MLContext).Assembly.GetCustomAttributes<InternalsVisibleToAttribute>().Select(a => a.AssemblyName).ToArray();
        CollectionAssert.AreEqual(new[] { "MLNet.StandIn.Tests" }, friends);
    }

    [TestMethod]
    public void DefaultParameterValuesAreMLNetLiterals()
    {
        var mapValueToKey = typeof(ConversionsExtensionsCatalog).GetMethods().First(m => m.Name == "MapValueToKey" && m.GetParameters()[1].ParameterType == typeof(string));
        var defaults = mapValueToKey.GetParameters().Skip(2).Select(p => p.DefaultValue).ToArray();
        Assert.AreEqual(1000000, defaults[1]);
        Assert.AreEqual(ValueToKeyMappingEstimator.KeyOrdinality.ByOccurrence, defaults[2]);
        Assert.AreEqual(false, defaults[3]);

        var evaluate = typeof(MulticlassClassificationCatalog).GetMethod("Evaluate")!;
        CollectionAssert.AreEqual(new object?[] { "Label", "Score", "PredictedLabel", 0 }, evaluate.GetParameters().Skip(1).Select(p => p.DefaultValue).ToArray());

        var load = typeof(TextLoaderSaverCatalog).GetMethods().First(m => m.Name == "LoadFromTextFile" && m.IsGenericMethod && m.GetParameters().Length == 7);
        CollectionAssert.AreEqual(new object?[] { '\t', false, false, false, false }, load.GetParameters().Skip(2).Select(p => p.DefaultValue).ToArray());

        var shuffle = typeof(DataOperationsCatalog).GetMethod("ShuffleRows")!;
        CollectionAssert.AreEqual(new object?[] { null, 1000, true }, shuffle.GetParameters().Skip(1).Select(p => p.DefaultValue).ToArray());
    }

    [TestMethod]
    public void TypeKindsMatchMLNet()
    {
        Assert.IsTrue(typeof(DataViewSchema).IsSealed);
        Assert.IsTrue(typeof(SchemaShape.Column).IsValueType);
        Assert.IsTrue(typeof(VBuffer<float>).IsValueType);
        Assert.IsTrue(typeof(DataViewRowId).IsValueType);
        Assert.IsTrue(typeof(DataViewRow).IsAbstract);
        Assert.IsTrue(typeof(DataViewRowCursor).IsAbstract);
        Assert.IsTrue(typeof(IDataView).IsInterface);
        Assert.IsTrue(typeof(BinaryClassificationMetrics).IsClass && !typeof(BinaryClassificationMetrics).IsSealed);
        Assert.IsTrue(typeof(MLContext).IsSealed);
        Assert.IsTrue(typeof(IHostEnvironment).IsAssignableFrom(typeof(MLContext)));
        Assert.IsNull(typeof(MLContext).GetMethod("Register", BindingFlags.Public | BindingFlags.Instance), "IHostEnvironment is implemented explicitly");
        Assert.AreEqual("Microsoft.ML.Data", typeof(VectorDataViewType).Namespace);
        Assert.AreEqual("Microsoft.ML", typeof(IDataView).Namespace);
        Assert.AreEqual("Microsoft.ML.Transforms", typeof(ValueToKeyMappingEstimator).Namespace);
        Assert.AreEqual("Microsoft.ML.Calibrators", typeof(ICalibrator).Namespace);
        Assert.AreEqual("Microsoft.ML.Runtime", typeof(ComponentCatalog).Namespace);
    }
}
