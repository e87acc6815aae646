namespace Microsoft.ML.Peft.InstructionTuning;

/// <summary>One instruction-tuning record in Alpaca's layout.</summary>
/// <param name="Instruction">What the model is asked to do.</param>
/// <param name="Input">Optional context for the instruction ("" when there is none).</param>
/// <param name="Output">The response the model should learn to produce.</param>
public sealed record InstructionExample(string Instruction, string Input, string Output);
