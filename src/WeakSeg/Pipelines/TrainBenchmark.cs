using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using WeakSeg.Methods;
using WeakSeg.Models.Vit;
using WeakSeg.Runtime;
using WeakSeg.Training;
using WeakSeg.Training.Bench;
using static TorchSharp.torch;

namespace WeakSeg.Pipelines;

/// <summary>What <see cref="TrainBenchmark.Run"/> measures (<c>weakseg bench train</c>).</summary>
/// <param name="ModelName">size preset name (cpu, deit-s), recorded in the report</param>
/// <param name="Method">registry name of the method trained</param>
/// <param name="Model">the method's configuration trained</param>
/// <param name="Steps">optimizer steps; the second RSS sample is taken at the last one</param>
/// <param name="ProbeStep">step of the first RSS sample</param>
/// <param name="WarmupSteps">steps left out of the throughput timing (allocator and thread-pool warm-up)</param>
/// <param name="Threads">libtorch intra-op threads (0 = libtorch's default)</param>
/// <param name="GemmSize">side of the square matmul that sets the GEMM ceiling</param>
/// <param name="GcEvery">run a full .NET garbage collection after every N-th step (0 = never; a diagnostic for native memory
/// held by undisposed TorchSharp objects until their finalizers run)</param>
public sealed record TrainBenchmarkSettings(string ModelName, string Method, IMethodConfig Model, int BatchSize, long Steps, long ProbeStep,
    long WarmupSteps, int Threads, int GemmSize = 1024, long Seed = 0, int GcEvery = 0)
{
    /// <summary>The method benchmarked unless <c>--method</c> says otherwise.</summary>
    public const string DefaultMethod = BuiltInMethods.MctFormerV2;

    /// <summary>What the FLOP figure is when the method counts its own heads (<see cref="ITrainFlopCount"/>).</summary>
    public const string ExactFlopsLabel = "training FLOPs (3 × forward matmuls, method heads included)";

    /// <summary>What the FLOP figure is otherwise: the ViT backbone alone, so achieved GFLOP/s and the GEMM fraction are lower bounds.</summary>
    public const string BackboneFlopsLabel = "backbone FLOPs (lower bound)";

    /// <summary>The first RSS sample's step unless given: 200, or steps/10 for short runs (at least 1).</summary>
    public static long DefaultProbeStep(long steps) => Math.Min(200, Math.Max(1, steps / 10));

    /// <summary>Steps left out of the timing unless given: min(20, steps/5).</summary>
    public static long DefaultWarmupSteps(long steps) => Math.Min(20, steps / 5);

    /// <summary>The size presets of <see cref="Preset"/>.</summary>
    public static readonly IReadOnlyList<string> ModelNames = ["cpu", "deit-s"];

    /// <summary>
    /// The configuration of <paramref name="method"/> for size preset <paramref name="model"/>: the method's paper configuration with
    /// the preset's class count and backbone shape. cpu: <see cref="VitConfig.Cpu192x6"/> (vit-cpu-192x6: input 96, patch 8, dim 192, depth 6, heads 4), 10 classes (finishes in
    /// minutes on CPU); deit-s: DeiT-S/16 at 224 with the 20 VOC classes (the paper's model). Other backbone fields (stochastic
    /// depth, stem, position embeddings) stay the method's. A method without a ViT (a CNN) takes only the input side. A method whose paper
    /// configuration is not buildable (a trunk whose weights the user supplies) starts from its cpu preset instead.
    /// </summary>
    public static TrainRecipe Preset(string model, string method = DefaultMethod)
    {
        var (classes, backbone) = model.Trim().ToLowerInvariant() switch
        {
            "cpu" or "vit-cpu-192x6" => (10, VitConfig.Cpu192x6),
            "deit-s" or "deit-small" => (20, VitConfig.Small with { ImageSize = 224 }),
            _ => throw new WeakSegException($"--model {model}: unknown model (expected cpu or deit-s)"),
        };
        // A method whose paper configuration cannot be built here (AuxSegNet's ResNet-38 needs the user's weights) starts from its cpu preset.
        var factory = MethodRegistry.Get(method);
        var buildable = factory.Validate(factory.DefaultConfig(MethodPreset.Paper).WithNumClasses(classes)).Count == 0;
        var recipe = TrainRecipe.Preset(method, buildable ? MethodPreset.Paper : MethodPreset.Cpu).For(classes);   // random tensors: an explicit K
        if (recipe.ModelConfig.BackboneConfig is null || recipe.ToJson()[TrainRecipe.ModelKey]?["backbone"] is null)
            return recipe.WithImageSize(backbone.ImageSize);                                  // a CNN method (no ViT fields): the preset's input side
        var shape = new JsonObject
        {
            [IO.WeakSegJson.Key(nameof(VitConfig.ImageSize))] = backbone.ImageSize,
            [IO.WeakSegJson.Key(nameof(VitConfig.PatchSize))] = backbone.PatchSize,
            [IO.WeakSegJson.Key(nameof(VitConfig.EmbedDim))] = backbone.EmbedDim,
            [IO.WeakSegJson.Key(nameof(VitConfig.Depth))] = backbone.Depth,
            [IO.WeakSegJson.Key(nameof(VitConfig.NumHeads))] = backbone.NumHeads,
        };
        var overlay = new JsonObject { [TrainRecipe.ModelKey] = new JsonObject { [IO.WeakSegJson.Key("Backbone")] = shape } };
        return recipe.Overlay(overlay, $"--model {model} (method {recipe.Method})");
    }

    /// <summary>
    /// <paramref name="recipe"/> changed by <paramref name="set"/> (the <c>--set</c> options), which may change only the model section:
    /// a bench run's trainer and data are its own (<c>--steps-long</c>, <c>--batch-size</c>, <c>--threads</c>), so a trainer or
    /// augmentation field would be silently ignored and is refused.
    /// </summary>
    public static TrainRecipe WithModelFields(TrainRecipe recipe, Func<TrainRecipe, TrainRecipe> set)
    {
        var changed = set(recipe);
        var before = recipe.ToJson();
        var after = changed.ToJson();
        foreach (var section in new[] { TrainRecipe.TrainerKey, TrainRecipe.AugmentationKey })
            if (!JsonNode.DeepEquals(before[section], after[section]))
                throw new WeakSegException($"--set {section}.…: bench train sets only {TrainRecipe.ModelKey}.FIELD (its trainer and data are fixed; " +
                                           "use --steps-long, --batch-size, --threads)");
        return changed;
    }

    IWsssMethodFactory Factory => MethodRegistry.Get(Method);

    /// <summary>Whether <see cref="TrainFlopsPerImage"/> counts the method's heads (true) or only its backbone (a lower bound).</summary>
    public bool FlopsExact => Model is ITrainFlopCount;

    public string FlopsLabel => FlopsExact ? ExactFlopsLabel : BackboneFlopsLabel;

    /// <summary>Training FLOPs per image: the method's own count, else its backbone's (<see cref="FlopsLabel"/>).</summary>
    public double TrainFlopsPerImage => Model is ITrainFlopCount counted ? counted.TrainFlopsPerImage() : TrainFlops.Backbone(Model);

    /// <summary>The method's name as its description writes it (the part before the first colon), e.g. for table titles.</summary>
    public string MethodTitle
    {
        get
        {
            var description = Factory.Description;
            int colon = description.IndexOf(':');
            return colon > 0 ? description[..colon] : Factory.Name;
        }
    }

    public void EnsureValid()
    {
        var errors = Factory.Validate(Model);
        if (errors.Count > 0) throw new WeakSegException($"invalid {Method} configuration: " + string.Join("; ", errors));
        if (BatchSize < 1) throw new WeakSegException($"--batch-size must be ≥ 1 (got {BatchSize})");
        if (Steps < 2) throw new WeakSegException($"--steps-long must be ≥ 2 (got {Steps})");
        if (ProbeStep < 1 || ProbeStep >= Steps)
            throw new WeakSegException($"--probe-step must be in [1, --steps-long) = [1, {Steps}) (got {ProbeStep}); the second RSS sample is taken at the last step");
        if (WarmupSteps < 0 || WarmupSteps >= Steps) throw new WeakSegException($"warm-up steps must be in [0, {Steps}) (got {WarmupSteps})");
        if (Threads < 0) throw new WeakSegException($"--threads must be ≥ 0 (got {Threads})");
        if (GcEvery < 0) throw new WeakSegException($"--gc-every must be ≥ 0 (got {GcEvery})");
        if (GemmSize < 64) throw new WeakSegException($"--gemm-size must be ≥ 64 (got {GemmSize})");
    }
}

/// <summary>Figures of one <see cref="TrainBenchmark.Run"/>. Memory in MiB.</summary>
public sealed record TrainBenchmarkResult(TrainBenchmarkSettings Settings, int Threads, long Parameters, TrainThroughput Throughput,
    double GemmGflopsBefore, double GemmGflopsAfter, double TimedSeconds, long TimedSteps, double TimedCpuSeconds,
    MemorySnapshot AtProbe, MemorySnapshot AtLast, double PeakRssMiB, float FirstLoss, float LastLoss,
    IReadOnlyDictionary<string, double>? SectionSeconds = null)
{
    /// <summary>Wall seconds per timed step in each part of the step a method marks (<see cref="StepTimings"/>), e.g. an EMA teacher.</summary>
    public IReadOnlyDictionary<string, double> SectionSecondsPerStep =>
        (SectionSeconds ?? new Dictionary<string, double>()).ToDictionary(kv => kv.Key, kv => kv.Value / TimedSteps);

    public double RssGrowth => (AtLast.RssBytes - AtProbe.RssBytes) / (double)AtProbe.RssBytes;
    public double SecondsPerStep => TimedSeconds / TimedSteps;

    /// <summary>Process CPU time ÷ (wall time × threads) over the timed steps: near 1 when libtorch had the cores to itself;
    /// well below 1 means other processes competed for the CPU and the wall-clock figures understate the machine.</summary>
    public double CpuUtilisation => TimedCpuSeconds / (TimedSeconds * Threads);
}

/// <summary>
/// Training throughput of a registered method (default <see cref="TrainBenchmarkSettings.DefaultMethod"/>) on fixed random tensors (no
/// disk I/O), trained by the shared <see cref="Trainer"/> with the method's own loss, as a fraction of this machine's float32 GEMM speed
/// measured in the same run, plus resident memory at two steps (the "memory stays flat" check). The harness of <c>weakseg bench train</c>.
/// </summary>
public static class TrainBenchmark
{
    /// <summary>The fraction of the GEMM ceiling a training step should reach.</summary>
    public const double GemmRatioGoal = 0.5;

    /// <summary>The largest resident-memory growth between the two samples that counts as flat.</summary>
    public const double RssGrowthGoal = 0.05;

    /// <summary>Measures the GEMM ceiling, trains <see cref="TrainBenchmarkSettings.Steps"/> steps on one fixed random batch,
    /// times the steps after the warm-up, samples RSS at the probe step and the last step, and measures GEMM again.</summary>
    public static TrainBenchmarkResult Run(TrainBenchmarkSettings settings, IProgress<ProgressUpdate>? progress = null)
    {
        settings.EnsureValid();
        TorchRuntime.EnsureLoaded();
        int threadsBefore = torch.get_num_threads();
        try
        {
            TorchRuntime.Initialize("cpu", settings.Threads);
            return RunWithThreads(settings, progress);
        }
        finally
        {
            torch.set_num_threads(threadsBefore);   // leave libtorch as we found it
        }
    }

    static TrainBenchmarkResult RunWithThreads(TrainBenchmarkSettings settings, IProgress<ProgressUpdate>? progress)
    {
        int threads = torch.get_num_threads();
        var gemmBefore = GemmCeiling.Measure(settings.GemmSize);

        TorchRuntime.Seed(settings.Seed);
        using var method = MethodRegistry.Get(settings.Method).Create(settings.Model);
        long parameters = method.Model.parameters().Sum(p => p.numel());
        int b = settings.BatchSize, k = settings.Model.NumClasses, side = settings.Model.ImageSize;
        using var images = torch.randn(b, settings.Model.BackboneConfig?.InChannels ?? 3, side, side);  // [B, 3, S, S]
        using var labels = MultiHotLabels(b, k);                                                       // [B, K]
        var batches = new DelegateBatchStream(_ => Endless(new TrainBatch(images, labels)));

        var runDirectory = Path.Combine(Path.GetTempPath(), "weakseg-bench-" + Guid.NewGuid().ToString("N")[..12]);
        var options = new TrainerOptions
        {
            Steps = settings.Steps,
            BatchSize = b,
            WarmupSteps = settings.Steps / 10,
            CheckpointEvery = settings.Steps,
            KeepLastCheckpoints = 1,
            LogEvery = Math.Max(1, settings.Steps / 20),
            Seed = settings.Seed,
            Threads = settings.Threads,
        };
        var probe = new RssGrowthProbe(settings.ProbeStep, settings.Steps);
        double warmupEnd = double.NaN, lastEnd = double.NaN;
        TimeSpan cpuAtWarmupEnd = CpuTime(), cpuAtLast = TimeSpan.Zero;
        float firstLoss = float.NaN, lastLoss = float.NaN;
        IReadOnlyDictionary<string, double> sections = new Dictionary<string, double>();
        StepTimings.Enabled = true;
        StepTimings.Reset();
        double peakMiB = 0;
        var trainer = new Trainer(options, runDirectory)
        {
            StepCompleted = report =>
            {
                if (report.Step == 1) firstLoss = report.Loss;
                if (report.Step == settings.WarmupSteps)
                {
                    warmupEnd = report.Seconds;
                    cpuAtWarmupEnd = CpuTime();
                    StepTimings.Reset();
                }
                if (report.Step == settings.Steps)
                {
                    lastEnd = report.Seconds;
                    cpuAtLast = CpuTime();
                    lastLoss = report.Loss;
                    sections = StepTimings.Totals;
                }
                probe.OnStep(report);
                if (settings.GcEvery > 0 && report.Step % settings.GcEvery == 0)
                {
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                }
                if (report.Step == settings.Steps) peakMiB = ProcessMemory.Read().PeakRssMiB;
            },
        };
        try
        {
            trainer.Run(method, batches, progress: progress);
        }
        finally
        {
            StepTimings.Enabled = false;
            try { Directory.Delete(runDirectory, true); } catch (IOException) { }
        }
        if (settings.WarmupSteps == 0) warmupEnd = 0;
        var gemmAfter = GemmCeiling.Measure(settings.GemmSize);

        long timedSteps = settings.Steps - settings.WarmupSteps;
        double seconds = lastEnd - warmupEnd;
        double imagesPerSecond = timedSteps * b / seconds;
        var throughput = TrainThroughput.Compute(imagesPerSecond, settings.TrainFlopsPerImage, Math.Max(gemmBefore.Gflops, gemmAfter.Gflops));
        return new TrainBenchmarkResult(settings, threads, parameters, throughput, gemmBefore.Gflops, gemmAfter.Gflops, seconds, timedSteps,
            (cpuAtLast - cpuAtWarmupEnd).TotalSeconds, probe.AtFirst!.Value, probe.AtSecond!.Value, peakMiB, firstLoss, lastLoss, sections);
    }

    /// <summary>Random multi-hot labels (each class present with probability 0.3), outside any dispose scope.</summary>
    static Tensor MultiHotLabels(int batch, int classes)
    {
        using var scope = torch.NewDisposeScope();
        return (torch.rand(batch, classes) < 0.3).to_type(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    static TimeSpan CpuTime()
    {
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        return process.TotalProcessorTime;
    }

    static IEnumerable<TrainBatch> Endless(TrainBatch batch)
    {
        while (true) yield return batch;
    }

    /// <summary>Writes the figures as JSON (full precision), atomically.</summary>
    public static void WriteJson(string path, TrainBenchmarkResult r)
    {
        var s = r.Settings;
        var c = s.Model.BackboneConfig;
        var factory = MethodRegistry.Get(s.Method);
        var modelConfig = factory.ConfigToJson(s.Model);
        WeakSeg.IO.AtomicFile.Write(path, stream =>
        {
            using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            w.WriteStartObject();
            w.WriteString("method", factory.Name);
            w.WriteString("model", s.ModelName);
            if (modelConfig["variant"] is JsonValue variant) w.WriteString("variant", variant.ToString());
            w.WriteNumber("image_size", s.Model.ImageSize);
            w.WriteNumber("patch_size", s.Model.MapStride);
            if (c is not null)
            {
                w.WriteString("stem", VitStems.Name(c.Stem));
                w.WriteNumber("embed_dim", c.EmbedDim);
                w.WriteNumber("depth", c.Depth);
                w.WriteNumber("heads", c.NumHeads);
            }
            w.WriteNumber("num_classes", s.Model.NumClasses);
            w.WriteNumber("parameters", r.Parameters);
            w.WriteNumber("batch_size", s.BatchSize);
            w.WriteNumber("steps", s.Steps);
            w.WriteNumber("warmup_steps", s.WarmupSteps);
            w.WriteNumber("threads", r.Threads);
            w.WriteNumber("gc_every", s.GcEvery);
            w.WriteNumber("timed_steps", r.TimedSteps);
            w.WriteNumber("timed_seconds", r.TimedSeconds);
            w.WriteNumber("seconds_per_step", r.SecondsPerStep);
            w.WriteNumber("timed_cpu_seconds", r.TimedCpuSeconds);
            w.WriteStartObject("section_seconds_per_step");
            foreach (var (section, perStep) in r.SectionSecondsPerStep.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteNumber(section, perStep);
            w.WriteEndObject();
            w.WriteNumber("cpu_utilisation", r.CpuUtilisation);
            w.WriteNumber("images_per_s", r.Throughput.ImagesPerSecond);
            w.WriteNumber("flops_per_image", r.Throughput.TrainFlopsPerImage);
            w.WriteString("flops_label", s.FlopsLabel);
            w.WriteBoolean("flops_exact", s.FlopsExact);
            w.WriteNumber("achieved_gflops", r.Throughput.AchievedGflops);
            w.WriteNumber("gemm_size", s.GemmSize);
            w.WriteNumber("gemm_gflops", r.Throughput.GemmGflops);
            w.WriteNumber("gemm_gflops_before", r.GemmGflopsBefore);
            w.WriteNumber("gemm_gflops_after", r.GemmGflopsAfter);
            w.WriteNumber("gemm_ratio", r.Throughput.FractionOfGemm);
            w.WriteNumber("gemm_ratio_goal", GemmRatioGoal);
            w.WriteNumber("peak_rss_mb", r.PeakRssMiB);
            w.WriteStartArray("rss_probe_steps");
            w.WriteNumberValue(s.ProbeStep);
            w.WriteNumberValue(s.Steps);
            w.WriteEndArray();
            w.WriteNumber("rss_mb_step200", r.AtProbe.RssMiB);
            w.WriteNumber("rss_mb_step2000", r.AtLast.RssMiB);
            w.WriteNumber("rss_growth", r.RssGrowth);
            w.WriteNumber("rss_growth_goal", RssGrowthGoal);
            w.WriteNumber("loss_first", r.FirstLoss);
            w.WriteNumber("loss_last", r.LastLoss);
            w.WritePropertyName("model_config");
            modelConfig.WriteTo(w);
            w.WriteString("memory_unit", "MiB (rss_mb_step200/rss_mb_step2000 are sampled at rss_probe_steps)");
            w.WriteEndObject();
        });
    }
}
