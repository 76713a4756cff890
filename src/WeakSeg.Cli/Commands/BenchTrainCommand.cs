using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using TorchSharp;
using WeakSeg.Methods;
using WeakSeg.Models.Vit;
using WeakSeg.Pipelines;
using WeakSeg.Runtime;
using WeakSeg.Training;
using WeakSeg.Training.Bench;
using static TorchSharp.torch;

namespace WeakSeg.Cli.Commands;

/// <summary>What <c>bench train</c> runs.</summary>
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
internal sealed record BenchTrainSettings(string ModelName, string Method, IMethodConfig Model, int BatchSize, long Steps, long ProbeStep,
    long WarmupSteps, int Threads, int GemmSize = 1024, long Seed = 0, int GcEvery = 0)
{
    /// <summary>The method benchmarked unless <c>--method</c> says otherwise.</summary>
    public const string DefaultMethod = BuiltInMethods.MctFormerV2;

    /// <summary>What the FLOP figure is when the method counts its own heads (<see cref="ITrainFlopCount"/>).</summary>
    public const string ExactFlopsLabel = "training FLOPs (3 × forward matmuls, method heads included)";

    /// <summary>What the FLOP figure is otherwise: the ViT backbone alone, so achieved GFLOP/s and the GEMM fraction are lower bounds.</summary>
    public const string BackboneFlopsLabel = "backbone FLOPs (lower bound)";

    /// <summary>
    /// The configuration of <paramref name="method"/> for size preset <paramref name="model"/>: the method's paper configuration with
    /// the preset's class count and backbone shape. cpu: input 96, patch 8, dim 192, depth 6, heads 4, 10 classes (finishes in
    /// minutes on CPU); deit-s: DeiT-S/16 at 224 with the 20 VOC classes (the paper's model). Other backbone fields (stochastic
    /// depth, stem, position embeddings) stay the method's. A method without a ViT (a CNN) takes only the input side.
    /// </summary>
    public static TrainRecipe Preset(string model, string method = DefaultMethod)
    {
        var (classes, backbone) = model.Trim().ToLowerInvariant() switch
        {
            "cpu" => (10, new VitConfig { ImageSize = 96, PatchSize = 8, EmbedDim = 192, Depth = 6, NumHeads = 4 }),
            "deit-s" or "deit-small" => (20, VitConfig.Small with { ImageSize = 224 }),
            _ => throw new WeakSegException($"--model {model}: unknown model (expected cpu or deit-s)"),
        };
        var recipe = TrainRecipe.Preset(method, MethodPreset.Paper, classes);
        if (recipe.ModelConfig.BackboneConfig is null) return recipe.WithImageSize(backbone.ImageSize);   // a CNN method: the preset's input side
        string Key(string property) => MethodJson.Options.PropertyNamingPolicy!.ConvertName(property);
        var shape = new JsonObject
        {
            [Key(nameof(VitConfig.ImageSize))] = backbone.ImageSize,
            [Key(nameof(VitConfig.PatchSize))] = backbone.PatchSize,
            [Key(nameof(VitConfig.EmbedDim))] = backbone.EmbedDim,
            [Key(nameof(VitConfig.Depth))] = backbone.Depth,
            [Key(nameof(VitConfig.NumHeads))] = backbone.NumHeads,
        };
        var overlay = new JsonObject { [TrainRecipe.ModelKey] = new JsonObject { [Key("Backbone")] = shape } };
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

/// <summary>Figures of one <c>bench train</c> run. Memory in MiB.</summary>
internal sealed record BenchTrainResult(BenchTrainSettings Settings, int Threads, long Parameters, TrainThroughput Throughput,
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
/// `weakseg bench train`: training throughput of a registered method (default <see cref="BenchTrainSettings.DefaultMethod"/>) on
/// fixed random tensors (no disk I/O), trained by the shared <see cref="Trainer"/> with the method's own loss, as a fraction of
/// this machine's 1024³ float32 GEMM speed measured in the same run, plus resident memory at two steps (the "memory stays flat" check).
/// </summary>
public static class BenchTrainCommand
{
    public const double GemmRatioGoal = 0.5;
    public const double RssGrowthGoal = 0.05;

    public static Command Create()
    {
        var json = new Option<string?>("--json") { Description = "Also write the figures as JSON to this file." };
        var method = new Option<string>("--method")
        {
            Description = $"Method trained, with its own loss: {string.Join(", ", MethodRegistry.Names)}. Its FLOPs are exact when the method " +
                          "counts its heads, else the backbone's alone, reported as a lower bound.",
            DefaultValueFactory = _ => BenchTrainSettings.DefaultMethod,
        };
        var model = new Option<string>("--model")
        {
            Description = "Size of the method's backbone. cpu: input 96, patch 8, dim 192, depth 6, heads 4, 10 classes (finishes in minutes on CPU); " +
                          "deit-s: DeiT-S/16 at 224, 20 classes (the paper's model; slow on CPU, use fewer steps).",
            DefaultValueFactory = _ => "cpu",
        };
        model.Aliases.Add("--preset");
        model.AcceptOnlyFromAmong("cpu", "deit-s");
        var steps = new Option<long>("--steps-long") { Description = "Training steps; RSS is sampled again at the last one.", DefaultValueFactory = _ => 2000 };
        var probe = new Option<long?>("--probe-step") { Description = "Step of the first RSS sample (default 200, or steps/10 for short runs)." };
        var imageSize = new Option<int?>("--image-size") { Description = "Input side in pixels (default: the model's, 96 for cpu, 224 for deit-s)." };
        var batchSize = new Option<int>("--batch-size")
        {
            Description = "Images per step (default 8: 2000 steps of the cpu model take a few minutes on 2 idle cores; GEMM efficiency is flat from 4 to 16).",
            DefaultValueFactory = _ => 8,
        };
        var threads = new Option<int>("--threads") { Description = "libtorch threads; 0 keeps libtorch's default (the physical cores).", DefaultValueFactory = _ => 0 };
        var warmup = new Option<long?>("--warmup-steps") { Description = "Steps excluded from the throughput timing (default min(20, steps/5))." };
        var gcEvery = new Option<int>("--gc-every")
        {
            Description = "Diagnostic: full .NET GC after every N-th step (0 = never). Shows how much resident memory is native memory " +
                          "waiting for finalizers of undisposed TorchSharp objects.",
            DefaultValueFactory = _ => 0,
        };
        var gemm = new Option<int>("--gemm-size") { Description = "Side n of the n×n×n matmul that sets the GEMM ceiling.", DefaultValueFactory = _ => 1024 };

        var recipeOptions = new RecipeOptions();

        var cmd = new Command("train", "Training throughput (images/s, fraction of GEMM GFLOP/s) and memory growth of a registered method on random tensors.");
        foreach (var o in new Option[] { json, method, model, steps, probe, imageSize, batchSize, threads, warmup, gemm, gcEvery }.Concat(recipeOptions.All))
            cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var name = parseResult.GetValue(model)!;
            var recipe = BenchTrainSettings.WithModelFields(BenchTrainSettings.Preset(name, parseResult.GetValue(method)!),
                r => recipeOptions.Apply(r, parseResult));
            if (parseResult.GetValue(imageSize) is int size) recipe = recipe.WithImageSize(size);
            long n = parseResult.GetValue(steps);
            var settings = new BenchTrainSettings(name, recipe.Method, recipe.ModelConfig, parseResult.GetValue(batchSize), n,
                parseResult.GetValue(probe) ?? Math.Min(200, Math.Max(1, n / 10)),
                parseResult.GetValue(warmup) ?? Math.Min(20, n / 5),
                parseResult.GetValue(threads), parseResult.GetValue(gemm), GcEvery: parseResult.GetValue(gcEvery));
            settings.EnsureValid();
            var result = CliProgress.Run($"bench train ({settings.Method} {name}, batch {settings.BatchSize})", p => Run(settings, p));
            EvalCommand.StdoutConsole().Write(Table(result));
            if (parseResult.GetValue(json) is { } path)
            {
                WriteJson(path, result);
                Console.WriteLine($"wrote {path}");
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>Measures the GEMM ceiling, trains <see cref="BenchTrainSettings.Steps"/> steps on one fixed random batch,
    /// times the steps after the warm-up, samples RSS at the probe step and the last step, and measures GEMM again.</summary>
    internal static BenchTrainResult Run(BenchTrainSettings settings, IProgress<ProgressUpdate>? progress = null)
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

    static BenchTrainResult RunWithThreads(BenchTrainSettings settings, IProgress<ProgressUpdate>? progress)
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
        double peakMiB = 0;
        IReadOnlyDictionary<string, double> sections = new Dictionary<string, double>();
        StepTimings.Enabled = true;
        StepTimings.Reset();
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
        return new BenchTrainResult(settings, threads, parameters, throughput, gemmBefore.Gflops, gemmAfter.Gflops, seconds, timedSteps,
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

    static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

    internal static Table Table(BenchTrainResult r)
    {
        var s = r.Settings;
        var table = new Table().Title(Markup.Escape(
            $"bench train: {s.MethodTitle} {s.ModelName} ({ShapeText(s.Model)}, " +
            $"{s.Model.NumClasses} classes), batch {s.BatchSize}, {s.Steps} steps, {r.Threads} threads"));
        table.AddColumn("figure");
        table.AddColumn(new TableColumn("value").RightAligned());
        table.AddColumn("goal");
        static string Verdict(bool ok) => ok ? "[green]met[/]" : "[red]missed[/]";
        bool ratioOk = r.Throughput.FractionOfGemm >= GemmRatioGoal, growthOk = r.RssGrowth < RssGrowthGoal;
        table.AddRow("images/s", F(r.Throughput.ImagesPerSecond, "F1"), "");
        table.AddRow("seconds/step", F(r.SecondsPerStep, "F3"), Markup.Escape($"(timed steps {s.WarmupSteps + 1}..{s.Steps})"));
        // Backbone FLOPs alone make the achieved rate and the GEMM fraction lower bounds: the method's heads also ran.
        string atLeast = s.FlopsExact ? "" : "≥ ";
        table.AddRow("train GFLOP/image", atLeast + F(r.Throughput.TrainFlopsPerImage / 1e9, "F3"),
            Markup.Escape(s.FlopsExact ? "(3 × forward matmuls" + (s.Model.BackboneConfig is { Stem: not VitStem.Patch, FreezeStem: true } ? "; frozen CNN stem 1 × forward)" : ")")
                : $"({s.FlopsLabel}: 3 × ViT forward matmuls, method heads not counted)"));
        table.AddRow("achieved GFLOP/s", atLeast + F(r.Throughput.AchievedGflops, "F1"), "");
        table.AddRow($"GEMM {s.GemmSize}³ GFLOP/s", F(r.Throughput.GemmGflops, "F1"),
            Markup.Escape($"(best of {F(r.GemmGflopsBefore, "F1")} before, {F(r.GemmGflopsAfter, "F1")} after)"));
        table.AddRow("achieved ÷ GEMM", $"[bold]{atLeast}{F(r.Throughput.FractionOfGemm, "F3")}[/]", $"≥ {F(GemmRatioGoal, "0.0#")} {Verdict(ratioOk)}");
        foreach (var (section, perStep) in r.SectionSecondsPerStep.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            table.AddRow(Markup.Escape("  " + section), F(perStep, "F3"), Markup.Escape($"(s/step, {F(100 * perStep / r.SecondsPerStep, "F1")} % of the step)"));
        table.AddRow("CPU utilisation", F(r.CpuUtilisation, "F2"), "(CPU time ÷ wall × threads; < 0.9 = busy machine)");
        table.AddRow("peak RSS MiB", F(r.PeakRssMiB, "F0"), "");
        table.AddRow($"RSS MiB at step {s.ProbeStep}", F(r.AtProbe.RssMiB, "F1"), "");
        table.AddRow($"RSS MiB at step {s.Steps}", F(r.AtLast.RssMiB, "F1"), "");
        table.AddRow("RSS growth", F(100 * r.RssGrowth, "F2") + " %", $"< {F(100 * RssGrowthGoal, "0")} % {Verdict(growthOk)}");
        table.AddRow("loss first → last", Markup.Escape($"{F(r.FirstLoss, "F4")} → {F(r.LastLoss, "F4")}"), "");
        return table;
    }

    /// <summary>The shape of the model trained, for the table's title: the ViT's input, patch (or hybrid stem), width, depth and heads;
    /// for a method without a ViT, its input side and map stride.</summary>
    internal static string ShapeText(IMethodConfig model) => model.BackboneConfig is { } c
        ? $"input {c.ImageSize}, " + (c.Stem == VitStem.Patch ? $"patch {c.PatchSize}" : $"stem {VitStems.Name(c.Stem)}" + (c.FreezeStem ? " (frozen)" : "")) +
          $", dim {c.EmbedDim}, depth {c.Depth}, heads {c.NumHeads}"
        : $"input {model.ImageSize}, map stride {model.MapStride}";

    /// <summary>Writes the figures as JSON (full precision), atomically.</summary>
    internal static void WriteJson(string path, BenchTrainResult r)
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
