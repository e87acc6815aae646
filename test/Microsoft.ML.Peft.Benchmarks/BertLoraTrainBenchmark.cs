using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// LoRA training throughput on a BERT-base-shaped sequence classifier (vocab 30522, 12 layers, hidden 768, 12 heads,
/// FFN 3072, random weights, dropout off), batch 8 × seq 128 (every position real), LoRA r 8 / alpha 16 on query and
/// value (dropout 0) plus the trainable classifier: forward, cross-entropy, backward, AdamW step (decay 0.01 on
/// matrices), zero-grad — the workload <c>bert-base-12l-lora-train</c> of build/reference/bench_torch.py, which runs
/// in the same invocation (2 threads). Prints ours, PyTorch's and the ratios:
/// <c>bert-lora-train ours tokens/s=N ms/step=M cpu_ms/step=C tokens/cpu_s=T</c>,
/// <c>bert-lora-train torch tokens/s=N ... ratio=R cpu_ratio=Q</c>.
/// Options: --steps N (default 3), --warmup N (default 1), --no-peer. Median step time after warm-up, as the peer.
/// </summary>
/// <remarks>
/// Besides wall time, both sides measure the median process CPU time per step (all threads): on a machine shared
/// with other jobs the wall-clock ratio says how the scheduler shared the cores, the CPU-time ratio how much work each
/// implementation spends per step.
/// </remarks>
internal sealed class BertLoraTrainBenchmark : IBenchmark
{
    private const int Batch = 8, Seq = 128;

    public string Name => "bert-lora-train";

    public string Description => "LoRA r=8 training step tokens/s of a 12-layer BERT-base classifier (seq 128, batch 8) vs PyTorch";

    public int Run(string[] args)
    {
        int steps = Option(args, "--steps", 3), warmup = Option(args, "--warmup", 1);
        var config = BertConfig.Base with { NumLabels = 2, HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0 };
        var model = (SequenceClassificationModel)PretrainedModel.Create(config, ModelTask.SequenceClassification, seed: 2024);
        var lora = new LoraConfig
        {
            Rank = 8, Alpha = 16, Dropout = 0, TargetModules = ModuleSelector.FromNames(["query", "value"]),
            TaskType = "SEQ_CLS", ModulesToSave = [.. model.ClassifierHeadNames],
        };
        PeftModel.Inject(model, lora, "default", new Generator(7));
        model.Train();
        var trainable = model.NamedParameters().Where(p => p.Parameter.RequiresGrad).Select(p => p.Parameter).ToList();
        var optimizer = new AdamW(
            [new ParameterGroup(trainable.Where(p => p.Rank >= 2)), new ParameterGroup(trainable.Where(p => p.Rank < 2), weightDecay: 0)],
            learningRate: 1e-3, weightDecay: 0.01);

        var g = new Generator(11);
        var ids = Enumerable.Range(0, Batch * Seq).Select(_ => 1 + (int)(g.NextUInt64() % 30521)).ToArray();
        var mask = Enumerable.Repeat(1, Batch * Seq).ToArray();
        var types = new int[Batch * Seq];
        var labels = Enumerable.Range(0, Batch).Select(i => i % 2).ToArray();

        var times = new List<double>();
        var cpuTimes = new List<double>();
        using var process = Process.GetCurrentProcess();
        for (int i = 0; i < warmup + steps; i++)
        {
            process.Refresh();
            var cpuStart = process.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            using (TensorScope.Begin())
            {
                var logits = model.Forward(ids, mask, types, Batch, Seq);
                logits.CrossEntropy(Tensor.FromInt32(labels, Batch)).Backward();
            }
            optimizer.Step();
            optimizer.ZeroGrad();
            sw.Stop();
            process.Refresh();
            if (i >= warmup)
            {
                times.Add(sw.Elapsed.TotalMilliseconds);
                cpuTimes.Add((process.TotalProcessorTime - cpuStart).TotalMilliseconds);
            }
        }
        double ms = Median(times), cpuMs = Median(cpuTimes);
        double ours = Batch * Seq / (ms / 1000.0), oursPerCpu = Batch * Seq / (cpuMs / 1000.0);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"bert-lora-train ours tokens/s={ours:F1} ms/step={ms:F1} cpu_ms/step={cpuMs:F1} tokens/cpu_s={oursPerCpu:F1} (median of {steps} after {warmup} warm-up; {trainable.Sum(p => (long)p.Count):N0} trainable parameters, {Environment.ProcessorCount} threads)"));

        if (Array.IndexOf(args, "--no-peer") < 0)
        {
            var torch = TorchPeer.TryRunLine("bert-base-12l-lora-train");
            Console.WriteLine(torch is { } line && Field(line, "tokens/s") is { } t && Field(line, "tokens/cpu_s") is { } tc
                ? string.Create(CultureInfo.InvariantCulture, $"bert-lora-train torch tokens/s={t:F1} tokens/cpu_s={tc:F1} ratio={ours / t:F2} cpu_ratio={oursPerCpu / tc:F2}")
                : "bert-lora-train torch tokens/s=n/a ratio=n/a");
        }
        return 0;
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }

    /// <summary>The number after "<paramref name="name"/>=" in a peer's output line, or null.</summary>
    private static double? Field(string line, string name)
    {
        foreach (var part in line.Split(' '))
        {
            if (part.StartsWith(name + "=", StringComparison.Ordinal))
                return double.Parse(part.AsSpan(name.Length + 1), CultureInfo.InvariantCulture);
        }
        return null;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
