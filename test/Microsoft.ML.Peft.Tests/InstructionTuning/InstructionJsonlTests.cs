using Microsoft.ML.Peft.InstructionTuning;

namespace Microsoft.ML.Peft.Tests.InstructionTuning;

[TestClass]
public sealed class InstructionJsonlTests
{
    private static string Write(string text)
    {
        string path = Path.Combine(Path.GetTempPath(), $"peft-jsonl-{Guid.NewGuid():N}.jsonl");
        File.WriteAllText(path, text);
        return path;
    }

    private static void WithFile(string text, Action<string> check)
    {
        string path = Write(text);
        try
        {
            check(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void ValidFile_ReadsEveryRecord_InputOptional_BlankLinesSkipped()
    {
        WithFile("""
            {"instruction": "Add.", "input": "2 + 3", "output": "5", "extra": 1}

            {"instruction": "Say hi.", "output": "hi"}
            {"instruction": "Echo.", "input": null, "output": "a \"quoted\" {input}"}
            """, path =>
        {
            var rows = InstructionJsonl.Read(path);
            Assert.HasCount(3, rows);
            Assert.AreEqual(new InstructionExample("Add.", "2 + 3", "5"), rows[0]);
            Assert.AreEqual(new InstructionExample("Say hi.", "", "hi"), rows[1]);
            Assert.AreEqual(new InstructionExample("Echo.", "", "a \"quoted\" {input}"), rows[2]);

            var view = InstructionJsonl.ToDataView(new MLContext(), rows);
            CollectionAssert.AreEqual(new[] { "Instruction", "Input", "Output" }, view.Schema.Select(c => c.Name).ToArray());
            Assert.AreEqual(3L, view.GetRowCount() ?? new MLContext().Data.CreateEnumerable<Row>(view, false).Count());
        });
    }

    [TestMethod]
    [DataRow("{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \"a\"}\n", 2, "the field \"output\" is missing")]
    [DataRow("{\"instruction\": \"a\", \"output\": \"b\"}\n\n{\"instruction\": \"a\", \"output\": \"b\"\n", 3, "not valid JSON")]
    [DataRow("{\"output\": \"b\"}\n", 1, "the field \"instruction\" is missing")]
    [DataRow("{\"instruction\": 5, \"output\": \"b\"}\n", 1, "\"instruction\" must be a string, found a Number")]
    [DataRow("{\"instruction\": \"a\", \"input\": [1], \"output\": \"b\"}\n", 1, "\"input\" must be a string, found a Array")]
    [DataRow("[1, 2]\n", 1, "expected a JSON object")]
    public void BadLine_ErrorNamesFileAndLine(string text, int line, string what)
    {
        WithFile(text, path =>
        {
            var e = Assert.ThrowsExactly<InvalidDataException>(() => InstructionJsonl.Read(path));
            StringAssert.Contains(e.Message, $"{path}:{line}: ");
            StringAssert.Contains(e.Message, what);
        });
    }

    [TestMethod]
    public void MissingOrEmptyFile_IsReported()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"peft-missing-{Guid.NewGuid():N}.jsonl");
        var e = Assert.ThrowsExactly<FileNotFoundException>(() => InstructionJsonl.Read(missing));
        StringAssert.Contains(e.Message, missing);
        WithFile("\n  \n", path => StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => InstructionJsonl.Read(path)).Message, "no records"));
    }

    private sealed class Row
    {
        public string Instruction { get; set; } = "";
    }
}
