using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// Forward + backward throughput of one BERT-base encoder layer (hidden 768, 12 heads, FFN 3072, GELU, post-LN),
/// sequence 128, batch 8, random weights, every parameter trainable, the input requiring grad too (as inside a stack).
/// Prints: <c>layer bert-base seq=128 batch=8 fwd+bwd tokens/s=N ms/step=M</c> (median of the timed steps).
/// Then runs the same layer in PyTorch (build/reference/bench_torch.py) and prints its tokens/s and our ratio.
/// Options: --steps N (default 5), --warmup N (default 2), --seq N, --batch N, --no-peer.
/// </summary>
internal sealed class LayerBenchmark : IBenchmark
{
    public string Name => "layer";

    public string Description => "forward+backward tokens/s of one BERT-base encoder layer (seq 128, batch 8)";

    public int Run(string[] args)
    {
        int steps = Option(args, "--steps", 5), warmup = Option(args, "--warmup", 2);
        int seq = Option(args, "--seq", 128), batch = Option(args, "--batch", 8);
        var g = new Generator(2024);
        var layer = new BertLayer(768, 12, 3072, g);
        var input = Tensor.Randn(g, batch, seq, 768).RequiresGrad_();
        var seed = Tensor.Randn(g, batch, seq, 768);

        var times = new List<double>();
        for (int i = 0; i < warmup + steps; i++)
        {
            var sw = Stopwatch.StartNew();
            using (TensorScope.Begin())
            {
                layer.Forward(input).Backward(seed);
            }
            sw.Stop();
            foreach (var p in layer.Parameters()) p.ZeroGrad();
            input.ZeroGrad();
            if (i >= warmup) times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        double ms = times[times.Count / 2];
        double tokensPerSecond = batch * seq / (ms / 1000.0);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"layer bert-base seq={seq} batch={batch} fwd+bwd tokens/s={tokensPerSecond:F0} ms/step={ms:F1}"));

        // The same layer in PyTorch, in this run (skipped with --no-peer or when python3+torch is absent).
        if (Array.IndexOf(args, "--no-peer") < 0 && seq == 128 && batch == 8)
        {
            double? torch = TorchPeer.TryRun("bert-base-layer-fwd-bwd");
            Console.WriteLine(torch is { } t
                ? string.Create(CultureInfo.InvariantCulture, $"layer bert-base torch tokens/s={t:F0} ratio={tokensPerSecond / t:F2}")
                : "layer bert-base torch tokens/s=n/a ratio=n/a");
        }
        return 0;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>HF BertLayer semantics (dropout off): self-attention + output dense + residual LayerNorm, FFN + residual LayerNorm.</summary>
    private sealed class BertLayer : Module
    {
        private readonly int heads;
        private readonly ModuleSlot<LinearLayer> query, key, value, attentionOutput, intermediate, output;
        private readonly ModuleSlot<LayerNorm> attentionNorm, outputNorm;

        public BertLayer(int hidden, int heads, int ffn, Generator g)
        {
            this.heads = heads;
            query = RegisterModule<LinearLayer>("query", new Linear(hidden, hidden, g));
            key = RegisterModule<LinearLayer>("key", new Linear(hidden, hidden, g));
            value = RegisterModule<LinearLayer>("value", new Linear(hidden, hidden, g));
            attentionOutput = RegisterModule<LinearLayer>("attention_output", new Linear(hidden, hidden, g));
            attentionNorm = RegisterModule("attention_norm", new LayerNorm(hidden, 1e-12f));
            intermediate = RegisterModule<LinearLayer>("intermediate", new Linear(hidden, ffn, g));
            output = RegisterModule<LinearLayer>("output", new Linear(ffn, hidden, g));
            outputNorm = RegisterModule("output_norm", new LayerNorm(hidden, 1e-12f));
        }

        public Tensor Forward(Tensor x)
        {
            int b = x.Size(0), t = x.Size(1), h = x.Size(2), d = h / heads;
            Tensor Heads(Tensor y) => y.Reshape(b, t, heads, d).Transpose(1, 2);
            var q = Heads(query.Module.Forward(x));
            var k = Heads(key.Module.Forward(x));
            var v = Heads(value.Module.Forward(x));
            var context = q.ScaledDotProductAttention(k, v).Transpose(1, 2).Reshape(b, t, h);
            var attended = attentionNorm.Module.Forward(attentionOutput.Module.Forward(context).Add(x));
            var ffn = output.Module.Forward(intermediate.Module.Forward(attended).Gelu());
            return outputNorm.Module.Forward(ffn.Add(attended));
        }
    }
}
