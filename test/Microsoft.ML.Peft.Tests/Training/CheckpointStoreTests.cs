using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft.Tests.Training;

[TestClass]
public sealed class CheckpointStoreTests
{
    [TestMethod]
    public void Save_KeepsOnlyTheNewest_RoundTripsValues_ReplacesSameStep()
    {
        string folder = Path.Combine(Path.GetTempPath(), "peft-store-" + Guid.NewGuid().ToString("N"));
        try
        {
            var store = new CheckpointStore(folder);
            Assert.IsNull(store.Latest());
            var shapes = new Dictionary<string, int[]> { ["param.w"] = [2, 2] };
            store.Save(new TrainerState { GlobalStep = 3, Fingerprint = "a" }, new Dictionary<string, float[]> { ["param.w"] = [1, 2, 3, 4] }, shapes);
            string second = store.Save(new TrainerState { GlobalStep = 7, Fingerprint = "a", Epoch = 1 }, new Dictionary<string, float[]> { ["param.w"] = [5, 6, 7, 8] }, shapes);
            Assert.AreEqual(second, store.Latest());
            Assert.AreEqual(1, Directory.GetDirectories(folder).Length);
            var (state, tensors) = CheckpointStore.Load(second);
            Assert.AreEqual(7, state.GlobalStep);
            Assert.AreEqual(1, state.Epoch);
            CollectionAssert.AreEqual(new float[] { 5, 6, 7, 8 }, tensors["param.w"]);

            string again = store.Save(new TrainerState { GlobalStep = 7, Fingerprint = "b" }, new Dictionary<string, float[]> { ["param.w"] = [9, 9, 9, 9] }, shapes);
            Assert.AreEqual(second, again);
            Assert.AreEqual("b", CheckpointStore.Load(again).State.Fingerprint);
            Assert.AreEqual(1, Directory.GetDirectories(folder).Length, string.Join(", ", Directory.GetDirectories(folder)));

            File.WriteAllText(Path.Combine(again, "trainer_state.json"), "{ not json");
            StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => CheckpointStore.Load(again)).Message, "trainer_state.json");
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
