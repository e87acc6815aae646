using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Peft.Kernels;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Quantization;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// <c>qlora [gemm] [step] [--layers N] [--seq S] [--steps K] [--optimizer eight-bit|paged-eight-bit] [--checkpoint block|half] [--embedding bf16|nf4]</c>:
/// (i) fused NF4 GEMM vs fp32 GEMM, y = x·Wᵀ with a 256-token x and 2048×2048 / 2048×5632 weights:
/// <c>qgemm KxN fp32=G nf4=G ratio=R</c> (GFLOP/s, best of 8 alternating repetitions, all cores; a second line
/// <c>qgemm-1thread-cpu</c> times one thread by its CPU clock, robust on a loaded machine). (ii) one LoRA training step
/// (r = 64 on every linear layer) of a randomly initialised Llama with TinyLlama-1.1B's dimensions, batch 1, seq 256:
/// (a) float32 base + AdamW, (b) NF4 + double-quantized base, bf16 embeddings and head, gradient checkpointing and
/// 8-bit AdamW. Each variant runs in a child process (<c>qlora variant fp32|qlora</c>) so peak RSS (VmHWM) does not mix:
/// <c>qlora-step variant=V ... step_s=T peak_rss_mb=M</c> (step_s: the last of K = 2 steps; pool_mb: tensor-pool
/// bytes ever allocated, i.e. the activation/gradient high-water mark). <c>qlora-phase</c> lines give resident set,
/// VmHWM, GC heap and tensor pool after the build and after each step's forward, backward and optimizer phases.
/// </summary>
internal sealed class QLoraBenchmark : IBenchmark
{
    private const int LossChunk = 64;

    /// <summary>Checkpoint attention and MLP halves separately (<c>--checkpoint half</c>) instead of whole layers.</summary>
    private static bool HalfBlockCheckpoints;

    /// <summary>(b) stores the input embedding in NF4 (bitsandbytes' Embedding4bit) instead of bf16 (<c>--embedding nf4</c>).</summary>
    private static bool Nf4Embeddings;

    /// <summary>
    /// (b) updates each decoder layer's LoRA weights as soon as backward is done with the layer and frees their
    /// gradients (<see cref="LayerwiseUpdates"/>; <c>--layerwise off</c> for one optimizer step after backward).
    /// </summary>
    private static bool LayerwiseSteps = true;

    private const int Hidden = 2048, Intermediate = 5632, Heads = 32, KvHeads = 4, Vocab = 32000, Rank = 64;

    public string Name => "qlora";

    public string Description => "fused NF4 GEMM vs fp32; TinyLlama-shaped LoRA step fp32 vs QLoRA (peak RSS, time): [gemm] [step] [--layers N] [--seq S] [--steps K]";

    public int Run(string[] args)
    {
        int layers = 22, seq = 256, steps = 2;
        string optimizer = "eight-bit";
        var parts = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--layers" && i + 1 < args.Length) layers = int.Parse(args[++i], CultureInfo.InvariantCulture);
            else if (args[i] == "--seq" && i + 1 < args.Length) seq = int.Parse(args[++i], CultureInfo.InvariantCulture);
            else if (args[i] == "--optimizer" && i + 1 < args.Length) optimizer = args[++i];
            else if (args[i] == "--steps" && i + 1 < args.Length) steps = int.Parse(args[++i], CultureInfo.InvariantCulture);
            else if (args[i] == "--checkpoint" && i + 1 < args.Length) HalfBlockCheckpoints = args[++i] == "half";
            else if (args[i] == "--embedding" && i + 1 < args.Length) Nf4Embeddings = args[++i] == "nf4";
            else if (args[i] == "--layerwise" && i + 1 < args.Length) LayerwiseSteps = args[++i] != "off";
            else parts.Add(args[i]);
        }
        if (parts is ["variant", var v]) return RunVariant(v, layers, seq, steps, optimizer);
        if (parts.Count == 0) parts = ["gemm", "step"];
        if (parts.Contains("gemm"))
        {
            QuantizedGemm(Hidden, Hidden);
            QuantizedGemm(Hidden, Intermediate);
        }
        if (parts.Contains("step"))
        {
            foreach (var variant in new[] { "fp32", "qlora" })
            {
                int code = RunChild(["qlora", "variant", variant, "--layers", $"{layers}", "--seq", $"{seq}", "--steps", $"{steps}", "--optimizer", optimizer,
                    "--checkpoint", HalfBlockCheckpoints ? "half" : "block", "--embedding", Nf4Embeddings ? "nf4" : "bf16", "--layerwise", LayerwiseSteps ? "on" : "off"]);
                if (code != 0) return code;
            }
        }
        return 0;
    }

    // ------------------------------------------------------------------ (i) fused GEMM

    private static void QuantizedGemm(int k, int n)
    {
        const int m = 256;
        var rng = new Generator(1);
        var x = new float[m * k];
        var w = new float[n * k];
        rng.FillNormal(x);
        rng.FillNormal(w, 0f, 0.02f);
        var q = QuantizedTensor4Bit.Quantize(w, [n, k], FourBitType.NF4, 64, doubleQuant: true);
        var operand = new QuantizedBOperand(q, transposed: true);
        var y = new float[m * n];
        var inv = CultureInfo.InvariantCulture;
        double flops = 2.0 * m * n * k;
        // All cores, wall clock (the figure asked for), then one thread timed by its own CPU clock, which other
        // processes on a shared machine cannot inflate.
        foreach (bool oneThreadCpu in new[] { false, true })
        {
            int threads = oneThreadCpu ? 1 : Environment.ProcessorCount;
            Func<double> now = oneThreadCpu && ThreadCpuClock.IsAvailable ? ThreadCpuClock.Now : () => Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
            double bestF32 = double.MaxValue, bestQ = double.MaxValue;
            for (int rep = 0; rep < 8; rep++)
            {
                double t0 = now();
                Gemm.Sgemm(GemmIsaInfo.Best, threads, false, true, m, n, k, 1f, x, k, w, k, 0f, y, n);
                double t1 = now();
                Gemm.Sgemm(GemmIsaInfo.Best, threads, false, m, 1f, x, k, operand, 0f, y, n);
                double t2 = now();
                bestF32 = Math.Min(bestF32, t1 - t0);
                bestQ = Math.Min(bestQ, t2 - t1);
            }
            Console.WriteLine(string.Format(inv, "{0} {1}x{2} fp32={3:F1} nf4={4:F1} ratio={5:F2}",
                oneThreadCpu ? "qgemm-1thread-cpu" : "qgemm", k, n, flops / bestF32 / 1e9, flops / bestQ / 1e9, bestF32 / bestQ));
        }
    }

    // ------------------------------------------------------------------ (ii) training step

    private static int RunChild(string[] args)
    {
        string exe = Environment.ProcessPath!;
        var info = new ProcessStartInfo(exe) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet") info.ArgumentList.Add(typeof(QLoraBenchmark).Assembly.Location);
        foreach (var a in args) info.ArgumentList.Add(a);
        using var child = Process.Start(info)!;
        child.WaitForExit();
        return child.ExitCode;
    }

    private static int RunVariant(string variant, int layers, int seq, int steps, string optimizerName)
    {
        bool qlora = variant == "qlora";
        if (!qlora && variant != "fp32")
        {
            Console.Error.WriteLine($"qlora: unknown variant '{variant}' (fp32 or qlora)");
            return 2;
        }
        var clock = Stopwatch.StartNew();
        var model = new Llama(layers, qlora, new Generator(7));
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        double buildSeconds = clock.Elapsed.TotalSeconds;
        long rssAfterBuild = Status("VmRSS:");
        Phase(-1, "build");

        var trainable = model.Parameters(trainableOnly: true).ToList();
        var storage = optimizerName == "paged-eight-bit" ? AdamWStateStorage.PagedEightBit : AdamWStateStorage.EightBit;
        bool layerwise = qlora && LayerwiseSteps;
        Optimizer optimizer = !qlora
            ? new AdamW(trainable, learningRate: 1e-4)
            : new AdamW8Bit(trainable, storage, learningRate: 1e-4); // layer-wise: finds no gradient left to step
        // Layer-wise: one optimizer per decoder layer, stepped from backward; each zeroes its gradients right after.
        if (layerwise) model.UseLayerwiseOptimizers(layer => new AdamW8Bit(layer.Parameters(trainableOnly: true), storage, learningRate: 1e-4));
        var ids = new int[seq];
        var targets = new int[seq];
        var rng = new Generator(3);
        for (int i = 0; i < seq; i++)
        {
            ids[i] = (int)(rng.NextUInt64() % Vocab);
            targets[i] = (int)(rng.NextUInt64() % Vocab);
        }

        // Step 1 also fills the tensor pool and JIT-compiles; later steps are the steady state (step_s reports the last).
        var stepSeconds = new List<double>();
        var stepCpuSeconds = new List<double>();
        float loss = 0;
        for (int step = 0; step < Math.Max(1, steps); step++)
        {
            clock.Restart();
            // CPU time of every thread of the process (kernel workers and GC included): on a shared machine the wall
            // clock measures the load, this measures the work.
            var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            using (TensorScope.Begin())
            {
                var l = model.Loss(ids, targets, checkpoint: qlora);
                Phase(step, "forward");
                l.Backward();
                Phase(step, "backward");
                optimizer.Step();
                Phase(step, "optimizer");
                optimizer.ZeroGrad();
                loss = l.Item();
            }
            stepSeconds.Add(clock.Elapsed.TotalSeconds);
            stepCpuSeconds.Add((Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds);
        }
        (optimizer as IDisposable)?.Dispose();
        model.DisposeLayerwiseOptimizers();
        long peak = Status("VmHWM:");
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Format(inv,
            "qlora-step variant={0} layers={1} seq={2} optimizer={3}{12} trainable={4} loss={5:F4} build_s={6:F1} rss_after_build_mb={7:F0} " +
            "step_times_s={8} step_s={9:F2} step_cpu_s={13} pool_mb={10:F0} peak_rss_mb={11:F0}",
            variant, layers, seq, qlora ? optimizerName : "adamw-fp32", trainable.Sum(p => (long)p.Count), loss, buildSeconds,
            rssAfterBuild / 1024.0, string.Join('/', stepSeconds.Select(s => s.ToString("F2", inv))), stepSeconds[^1],
            TensorPool.AllocatedBytes / 1048576.0, peak / 1024.0, layerwise ? "-layerwise" : "",
            string.Join('/', stepCpuSeconds.Select(s => s.ToString("F1", inv)))));
        return 0;
    }

    /// <summary>Where the memory is after each phase of a step: resident set and its peak, GC heap, tensor pool.</summary>
    private static void Phase(int step, string phase)
    {
        var gc = GC.GetGCMemoryInfo();
        Console.WriteLine(string.Format(CultureInfo.InvariantCulture,
            "qlora-phase step={0} after={1} rss_mb={2:F0} hwm_mb={3:F0} gc_heap_mb={4:F0} gc_committed_mb={5:F0} pool_allocated_mb={6:F0} pool_idle_mb={7:F0}",
            step + 1, phase, Status("VmRSS:") / 1024.0, Status("VmHWM:") / 1024.0, GC.GetTotalMemory(false) / 1048576.0,
            gc.TotalCommittedBytes / 1048576.0, TensorPool.AllocatedBytes / 1048576.0, TensorPool.RetainedBytes / 1048576.0));
    }

    /// <summary>A KiB field of /proc/self/status (VmHWM = peak resident set, VmRSS = current); 0 elsewhere.</summary>
    private static long Status(string field)
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return 0;
        var line = File.ReadLines(status).FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split(':', 2)[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }

    // ------------------------------------------------------------------ the model, from engine ops

    /// <summary>U(−a, a) with the standard deviation 0.02 of Llama's initialiser: cheap to draw for a billion weights.</summary>
    private const float InitBound = 0.0346410162f;

    /// <summary>A frozen base layer plus a trainable low-rank update: base(x) + (x·Aᵀ)·Bᵀ·(α/r), α = 16, B = 0 at start.</summary>
    private sealed class LoraLinear : LinearLayer
    {
        private readonly ModuleSlot<LinearLayer> baseLayer;
        private readonly Parameter a, b;

        public LoraLinear(LinearLayer layer, Generator g)
        {
            baseLayer = RegisterModule("base_layer", layer);
            Tensor ta, tb;
            using (TensorScope.Untracked())
            {
                ta = Tensor.Empty(Rank, layer.InFeatures).KaimingUniform_(g);
                tb = Tensor.Zeros(layer.OutFeatures, Rank);
            }
            a = RegisterParameter("lora_A", ta);
            b = RegisterParameter("lora_B", tb);
        }

        public override int InFeatures => baseLayer.Module.InFeatures;

        public override int OutFeatures => baseLayer.Module.OutFeatures;

        // Scaling the rank-r intermediate instead of the [tokens, out] product saves one output-sized activation.
        public override Tensor Forward(Tensor input) =>
            baseLayer.Module.Forward(input).Add(input.Linear(a.Value).Mul(16f / Rank).Linear(b.Value));
    }

    private sealed class DecoderLayer : Module
    {
        private readonly ModuleSlot<RMSNorm> inputNorm, postNorm;
        private readonly ModuleSlot<LinearLayer> q, k, v, o, gate, up, down;

        public DecoderLayer(bool quantized, Generator g, float[] scratch)
        {
            inputNorm = RegisterModule("input_layernorm", new RMSNorm(Hidden, 1e-5f));
            q = RegisterModule<LinearLayer>("q_proj", Lora(Hidden, Hidden, quantized, g, scratch));
            k = RegisterModule<LinearLayer>("k_proj", Lora(Hidden, KvHeads * (Hidden / Heads), quantized, g, scratch));
            v = RegisterModule<LinearLayer>("v_proj", Lora(Hidden, KvHeads * (Hidden / Heads), quantized, g, scratch));
            o = RegisterModule<LinearLayer>("o_proj", Lora(Hidden, Hidden, quantized, g, scratch));
            postNorm = RegisterModule("post_attention_layernorm", new RMSNorm(Hidden, 1e-5f));
            gate = RegisterModule<LinearLayer>("gate_proj", Lora(Hidden, Intermediate, quantized, g, scratch));
            up = RegisterModule<LinearLayer>("up_proj", Lora(Hidden, Intermediate, quantized, g, scratch));
            down = RegisterModule<LinearLayer>("down_proj", Lora(Intermediate, Hidden, quantized, g, scratch));
            inputNorm.Module.SetRequiresGrad(false);
            postNorm.Module.SetRequiresGrad(false);
        }

        public Tensor Forward(Tensor h, Tensor cos, Tensor sin) => Mlp(Attention(h, cos, sin));

        /// <summary>h + o(attention(norm(h))): the first residual half of the block.</summary>
        public Tensor Attention(Tensor h, Tensor cos, Tensor sin)
        {
            int t = h.Size(1), d = Hidden / Heads;
            var x = inputNorm.Module.Forward(h);
            var qh = q.Module.Forward(x).Reshape(1, t, Heads, d).Transpose(1, 2).ApplyRotary(cos, sin);
            var kh = k.Module.Forward(x).Reshape(1, t, KvHeads, d).Transpose(1, 2).ApplyRotary(cos, sin);
            var vh = v.Module.Forward(x).Reshape(1, t, KvHeads, d).Transpose(1, 2);
            var attention = qh.ScaledDotProductAttention(kh, vh, causal: true).Transpose(1, 2).Reshape(1, t, Hidden);
            return h.Add(o.Module.Forward(attention));
        }

        /// <summary>h + down(silu(gate(norm(h))) · up(norm(h))): the second residual half.</summary>
        public Tensor Mlp(Tensor h)
        {
            var x = postNorm.Module.Forward(h);
            return h.Add(down.Module.Forward(gate.Module.Forward(x).Silu().Mul(up.Module.Forward(x))));
        }

        /// <summary>The parameters of the attention half (norm and q/k/v/o with their adapters).</summary>
        public IEnumerable<Tensor> AttentionParameters() =>
            new Module[] { inputNorm.Module, q.Module, k.Module, v.Module, o.Module }.SelectMany(m => m.Parameters());

        /// <summary>The parameters of the MLP half.</summary>
        public IEnumerable<Tensor> MlpParameters() =>
            new Module[] { postNorm.Module, gate.Module, up.Module, down.Module }.SelectMany(m => m.Parameters());

        /// <summary>A LoRA-wrapped frozen base: fp32, or NF4 + double quantization drawn straight into 4 bits.</summary>
        /// <remarks>
        /// The quantized variant draws every weight into one reused <paramref name="scratch"/> buffer, as a loader
        /// quantizing from a memory-mapped checkpoint would never hold more than one fp32 matrix: no 46 MB of garbage
        /// per layer inflating the peak while the model is built.
        /// </remarks>
        private static LoraLinear Lora(int inF, int outF, bool quantized, Generator g, float[] scratch)
        {
            LinearLayer layer;
            if (quantized)
            {
                var w = scratch.AsSpan(0, outF * inF);
                g.FillUniform(w, -InitBound, InitBound);
                layer = new QuantizedLinear(QuantizedTensor4Bit.Quantize(w, [outF, inF], FourBitType.NF4, 64, doubleQuant: true));
            }
            else
            {
                Tensor w;
                using (TensorScope.Untracked()) w = Tensor.Empty(outF, inF).Uniform_(g, -InitBound, InitBound);
                layer = new Linear(w);
            }
            layer.SetRequiresGrad(false);
            return new LoraLinear(layer, g);
        }
    }

    private sealed class Llama : Module
    {
        private readonly ModuleSlot<Embedding>? embed;
        private readonly QuantizedTensor4Bit? nf4Embedding;
        private readonly ModuleSlot<ModuleList<DecoderLayer>> layers;
        private readonly ModuleSlot<RMSNorm> norm;
        private readonly ModuleSlot<LinearLayer> head;
        private readonly Tensor cos, sin;
        private Optimizer[]? layerOptimizers;

        public Llama(int layerCount, bool quantized, Generator g)
        {
            var dtype = quantized ? DType.BFloat16 : DType.Float32;
            if (quantized && Nf4Embeddings) nf4Embedding = RandomNf4Matrix(Vocab, Hidden, g);
            else embed = RegisterModule("embed_tokens", new Embedding(RandomMatrix(Vocab, Hidden, dtype, g)));
            layers = RegisterModule("layers", new ModuleList<DecoderLayer>());
            var scratch = quantized ? GC.AllocateUninitializedArray<float>(Intermediate * Hidden) : [];
            for (int i = 0; i < layerCount; i++) layers.Module.Add(new DecoderLayer(quantized, g, scratch));
            norm = RegisterModule("norm", new RMSNorm(Hidden, 1e-5f));
            head = RegisterModule<LinearLayer>("lm_head", new Linear(RandomMatrix(Vocab, Hidden, dtype, g)));
            embed?.Module.SetRequiresGrad(false);
            norm.Module.SetRequiresGrad(false);
            head.Module.SetRequiresGrad(false);
            using (TensorScope.Untracked()) (cos, sin) = RotaryTables.Create(4096, Hidden / Heads, 10000.0);
        }

        /// <summary>Gives every decoder layer its own optimizer, stepped from backward once the layer's gradients are complete.</summary>
        public void UseLayerwiseOptimizers(Func<Module, Optimizer> create) =>
            layerOptimizers = [.. Enumerable.Range(0, layers.Module.Count).Select(i => create(layers.Module[i]))];

        public void DisposeLayerwiseOptimizers()
        {
            foreach (var o in layerOptimizers ?? []) (o as IDisposable)?.Dispose();
        }

        /// <summary>
        /// Mean next-token cross-entropy. With <paramref name="checkpoint"/> every decoder layer is checkpointed and so
        /// is the head + loss, in chunks of <see cref="LossChunk"/> tokens: no [seq, vocab] logits tensor (32.8 MB at
        /// seq 256, three of them with the softmax and its gradient) ever exists, only one [64, vocab] chunk at a time,
        /// recomputed in backward; the chunk's 8.2 MB buffers share the pool's size class with the attention scores.
        /// </summary>
        public Tensor Loss(int[] ids, int[] targets, bool checkpoint)
        {
            int seq = ids.Length;
            var h = embed is not null ? embed.Module.Forward(Tensor.FromInt32(ids, 1, seq)) : LookUpNf4(ids);
            for (int i = 0; i < layers.Module.Count; i++)
            {
                var layer = layers.Module[i];
                if (layerOptimizers?[i] is { } layerOptimizer)
                {
                    h = LayerwiseUpdates.AfterBlockBackward(h, () =>
                    {
                        layerOptimizer.Step();
                        layerOptimizer.ReleaseGradients();
                    });
                }
                if (!checkpoint) h = layer.Forward(h, cos, sin);
                else if (!HalfBlockCheckpoints) h = Checkpointing.Checkpoint(x => layer.Forward(x, cos, sin), h, layer.Parameters());
                else
                {
                    // Two checkpoints per layer: one more saved [seq, hidden] input per layer, but backward recomputes
                    // (and holds the activations of) only half a block at a time.
                    h = Checkpointing.Checkpoint(x => layer.Attention(x, cos, sin), h, layer.AttentionParameters());
                    h = Checkpointing.Checkpoint(layer.Mlp, h, layer.MlpParameters());
                }
            }
            if (!checkpoint) return head.Module.Forward(norm.Module.Forward(h)).CrossEntropy(Tensor.FromInt32(targets, 1, seq));
            Tensor? total = null;
            for (int start = 0; start < seq; start += LossChunk)
            {
                int length = Math.Min(LossChunk, seq - start);
                var chunkTargets = Tensor.FromInt32(targets.AsSpan(start, length).ToArray(), 1, length);
                float weight = length / (float)seq; // chunk means weighted by their share of the tokens = the overall mean
                var part = Checkpointing.Checkpoint(
                    x => head.Module.Forward(norm.Module.Forward(x)).CrossEntropy(chunkTargets).Mul(weight),
                    h.Narrow(1, start, length), []);
                total = total is null ? part : total.Add(part);
            }
            return total!;
        }

        /// <summary>Rows of the 4-bit embedding table, dequantized into a [1, seq, hidden] float32 tensor (frozen input).</summary>
        private Tensor LookUpNf4(int[] ids)
        {
            var rows = GC.AllocateUninitializedArray<float>(ids.Length * Hidden);
            for (int i = 0; i < ids.Length; i++) nf4Embedding!.DequantizeRow(ids[i], rows.AsSpan(i * Hidden, Hidden));
            return Tensor.From(rows, 1, ids.Length, Hidden);
        }

        /// <summary>
        /// A random [rows, cols] table in NF4 (block 64, double quantization), quantized 1,024 rows at a time: blocks
        /// never cross rows, so the pieces' codes and scales concatenate to the whole table's, and the scales are
        /// double-quantized together at the end, as quantizing the full fp32 table (which never exists) would.
        /// </summary>
        private static QuantizedTensor4Bit RandomNf4Matrix(int rows, int cols, Generator g)
        {
            const int chunkRows = 1024;
            var packed = new byte[(long)rows * cols / 2];
            var absmax = new float[(long)rows * cols / 64];
            var chunk = new float[chunkRows * cols];
            for (int r0 = 0; r0 < rows; r0 += chunkRows)
            {
                int n = Math.Min(chunkRows, rows - r0);
                var part = chunk.AsSpan(0, n * cols);
                g.FillUniform(part, -InitBound, InitBound);
                var q = QuantizedTensor4Bit.Quantize(part, [n, cols], FourBitType.NF4, 64, doubleQuant: false);
                q.PackedCodes.CopyTo(packed.AsSpan(r0 * cols / 2));
                q.Absmax.CopyTo(absmax.AsSpan(r0 * cols / 64));
            }
            return QuantizedTensor4Bit.FromParts(FourBitType.NF4, [rows, cols], 64, packed, null, DoubleQuantizedScales.Quantize(absmax));
        }

        /// <summary>A frozen random [rows, cols] matrix, bfloat16 drawn in chunks so no fp32 copy is ever whole.</summary>
        private static Tensor RandomMatrix(int rows, int cols, DType dtype, Generator g)
        {
            using var untracked = TensorScope.Untracked();
            if (dtype == DType.Float32) return Tensor.Empty(rows, cols).Uniform_(g, -InitBound, InitBound);
            var t = Tensor.NewOutput([rows, cols], "random_bf16", DType.BFloat16);
            var bits = t.AsSpan<ushort>();
            var chunk = new float[1 << 16];
            for (int start = 0; start < bits.Length; start += chunk.Length)
            {
                var part = chunk.AsSpan(0, Math.Min(chunk.Length, bits.Length - start));
                g.FillUniform(part, -InitBound, InitBound);
                for (int i = 0; i < part.Length; i++) bits[start + i] = BFloat16.FromFloat(part[i]);
            }
            return t;
        }
    }
}
