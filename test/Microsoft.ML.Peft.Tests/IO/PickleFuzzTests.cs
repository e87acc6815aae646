using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.IO.Pickle;

namespace Microsoft.ML.Peft.Tests.IO;

/// <summary>
/// Mutates the pickle of a real torch.save file 5,000 times and runs the restricted interpreter on each: the only
/// acceptable failure is a <see cref="PickleFormatException"/> (no crash, no other exception type, no hang).
/// </summary>
[TestClass]
public sealed class PickleFuzzTests
{
    private static readonly byte[] Opcodes = [.. "()tRQqhjrKMJXu.}]NbsaeG"u8, 0x80, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x93, 0x94, 0x95];

    [TestMethod]
    public void MutatedPickles_OnlyDocumentedExceptions()
    {
        string path = TestPaths.Fixture("io", "torch_state_dict.bin");
        using var handle = File.OpenHandle(path);
        var archive = TorchArchive.Read(handle, path);
        byte[] valid = archive.Pickle;
        var rng = new Random(77);
        int ok = 0, refused = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 5_000; i++)
        {
            var candidate = (byte[])valid.Clone();
            if (i % 5 == 4) candidate = candidate[..rng.Next(candidate.Length)];
            for (int f = rng.Next(1, 4); f > 0 && candidate.Length > 0; f--)
            {
                int at = rng.Next(candidate.Length);
                candidate[at] = rng.Next(2) == 0 ? (byte)rng.Next(256) : Opcodes[rng.Next(Opcodes.Length)];
            }
            var refs = new Dictionary<string, TorchStorageRef>(StringComparer.Ordinal);
            try
            {
                new PickleMachine(candidate, path, pid => archive.LoadStorage(pid, refs)).Run();
                ok++;
            }
            catch (PickleFormatException)
            {
                refused++;
            }
        }
        Console.WriteLine($"pickle fuzz: {ok} ran, {refused} refused, {clock.ElapsedMilliseconds} ms");
        Assert.IsGreaterThan(1000, refused);
        Assert.IsLessThan(10_000, clock.ElapsedMilliseconds);
    }
}
