using Microsoft.ML.Peft.InstructionTuning;

namespace Microsoft.ML.Peft.Tests.InstructionTuning;

[TestClass]
public sealed class PromptTemplateTests
{
    [TestMethod]
    public void Alpaca_WithInput_IsStanfordAlpacasPromptInput()
    {
        string expected =
            "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n" +
            "### Instruction:\nTranslate to French.\n\n### Input:\ngood morning\n\n### Response:\n";
        Assert.AreEqual(expected, PromptTemplate.Alpaca.Format("Translate to French.", "good morning"));
    }

    [TestMethod]
    public void Alpaca_WithoutInput_IsStanfordAlpacasPromptNoInput()
    {
        string expected =
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
            "### Instruction:\nName a colour.\n\n### Response:\n";
        Assert.AreEqual(expected, PromptTemplate.Alpaca.Format("Name a colour.", ""));
        Assert.AreEqual(expected, PromptTemplate.Alpaca.Format("Name a colour.", null));
    }

    [TestMethod]
    public void UserTextWithPlaceholders_IsNotSubstitutedAgain()
    {
        var template = new PromptTemplate("{instruction}|{input}|{instruction}");
        Assert.AreEqual("say {input}|x {instruction} y|say {input}", template.Format("say {input}", "x {instruction} y"));
        // No no-input template: the input placeholder becomes empty.
        Assert.AreEqual("a||a", template.Format("a", ""));
    }

    [TestMethod]
    public void InvalidTemplates_AreRefusedNamingTheProblem()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => new PromptTemplate("no placeholder {instruction}"));
        StringAssert.Contains(e.Message, "{input}");
        e = Assert.ThrowsExactly<ArgumentException>(() => new PromptTemplate("{input}", "also {input}"));
        StringAssert.Contains(e.Message, "must not contain {input}");
    }
}
