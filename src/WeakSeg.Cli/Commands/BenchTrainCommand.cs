using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using WeakSeg.Cli.Options;
using WeakSeg.Cli.Output;
using WeakSeg.Methods;
using WeakSeg.Models.Vit;
using WeakSeg.Pipelines;

namespace WeakSeg.Cli.Commands;

/// <summary>
/// `weakseg bench train`: training throughput of a registered method (default <see cref="TrainBenchmarkSettings.DefaultMethod"/>) on
/// fixed random tensors: parses the options, runs <see cref="TrainBenchmark.Run"/> and prints its figures.
/// </summary>
public static class BenchTrainCommand
{

    public static Command Create()
    {
        var json = new Option<string?>("--json") { Description = "Also write the figures as JSON to this file." };
        var method = new Option<string>("--method")
        {
            Description = $"Method trained, with its own loss: {string.Join(", ", MethodRegistry.Names)}. Its FLOPs are exact when the method " +
                          "counts its heads, else the backbone's alone, reported as a lower bound.",
            DefaultValueFactory = _ => TrainBenchmarkSettings.DefaultMethod,
        };
        var model = new Option<string>("--model")
        {
            Description = "Size of the method's backbone. cpu: the vit-cpu-192x6 backbone (input 96, patch 8, dim 192, depth 6, heads 4; not the CAM methods' " +
                          "vit-cpu-128x4), 10 classes (finishes in minutes on CPU); " +
                          "deit-s: DeiT-S/16 at 224, 20 classes (the paper's model; slow on CPU, use fewer steps).",
            DefaultValueFactory = _ => "cpu",
        };
        model.Aliases.Add("--preset");
        model.AcceptOnlyFromAmong([.. TrainBenchmarkSettings.ModelNames]);
        var steps = new Option<long>("--steps-long") { Description = "Training steps; RSS is sampled again at the last one.", DefaultValueFactory = _ => 2000 };
        var probe = new Option<long?>("--probe-step") { Description = "Step of the first RSS sample (default 200, or steps/10 for short runs)." };
        var imageSize = new Option<int?>("--image-size") { Description = "Input side in pixels (default: the model's, 96 for cpu, 224 for deit-s)." };
        var batchSize = new Option<int>("--batch-size")
        {
            Description = "Images per step (default 8: 2000 steps of the cpu model take a few minutes on 2 idle cores; GEMM efficiency is flat from 4 to 16).",
            DefaultValueFactory = _ => 8,
        };
        var runtime = new RuntimeOptions(RuntimePart.Threads);
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
        foreach (var o in new Option[] { json, method, model, steps, probe, imageSize, batchSize, runtime.Threads, warmup, gemm, gcEvery }.Concat(recipeOptions.All))
            cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var name = parseResult.GetValue(model)!;
            var recipe = TrainBenchmarkSettings.WithModelFields(TrainBenchmarkSettings.Preset(name, parseResult.GetValue(method)!),
                r => recipeOptions.Apply(r, parseResult));
            if (parseResult.GetValue(imageSize) is int size) recipe = recipe.WithImageSize(size);
            long n = parseResult.GetValue(steps);
            var settings = new TrainBenchmarkSettings(name, recipe.Method, recipe.ModelConfig, parseResult.GetValue(batchSize), n,
                parseResult.GetValue(probe) ?? TrainBenchmarkSettings.DefaultProbeStep(n),
                parseResult.GetValue(warmup) ?? TrainBenchmarkSettings.DefaultWarmupSteps(n),
                runtime.ThreadsValue(parseResult), parseResult.GetValue(gemm), GcEvery: parseResult.GetValue(gcEvery));
            settings.EnsureValid();
            var result = CliProgress.Run($"bench train ({settings.Method} {name}, batch {settings.BatchSize})", p => TrainBenchmark.Run(settings, p));
            CliConsole.Stdout().Write(Table(result));
            if (parseResult.GetValue(json) is { } path)
            {
                TrainBenchmark.WriteJson(path, result);
                Console.WriteLine($"wrote {path}");
            }
            return 0;
        });
        return cmd;
    }

    static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

    internal static Table Table(TrainBenchmarkResult r)
    {
        var s = r.Settings;
        var table = new Table().Title(Markup.Escape(
            $"bench train: {s.MethodTitle} {s.ModelName} ({ShapeText(s.Model)}, " +
            $"{s.Model.NumClasses} classes), batch {s.BatchSize}, {s.Steps} steps, {r.Threads} threads"));
        table.AddColumn("figure");
        table.AddColumn(new TableColumn("value").RightAligned());
        table.AddColumn("goal");
        static string Verdict(bool ok) => ok ? "[green]met[/]" : "[red]missed[/]";
        bool ratioOk = r.Throughput.FractionOfGemm >= TrainBenchmark.GemmRatioGoal, growthOk = r.RssGrowth < TrainBenchmark.RssGrowthGoal;
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
        table.AddRow("achieved ÷ GEMM", $"[bold]{atLeast}{F(r.Throughput.FractionOfGemm, "F3")}[/]", $"≥ {F(TrainBenchmark.GemmRatioGoal, "0.0#")} {Verdict(ratioOk)}");
        foreach (var (section, perStep) in r.SectionSecondsPerStep.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            table.AddRow(Markup.Escape("  " + section), F(perStep, "F3"), Markup.Escape($"(s/step, {F(100 * perStep / r.SecondsPerStep, "F1")} % of the step)"));
        table.AddRow("CPU utilisation", F(r.CpuUtilisation, "F2"), "(CPU time ÷ wall × threads; < 0.9 = busy machine)");
        table.AddRow("peak RSS MiB", F(r.PeakRssMiB, "F0"), "");
        table.AddRow($"RSS MiB at step {s.ProbeStep}", F(r.AtProbe.RssMiB, "F1"), "");
        table.AddRow($"RSS MiB at step {s.Steps}", F(r.AtLast.RssMiB, "F1"), "");
        table.AddRow("RSS growth", F(100 * r.RssGrowth, "F2") + " %", $"< {F(100 * TrainBenchmark.RssGrowthGoal, "0")} % {Verdict(growthOk)}");
        table.AddRow("loss first → last", Markup.Escape($"{F(r.FirstLoss, "F4")} → {F(r.LastLoss, "F4")}"), "");
        return table;
    }

    /// <summary>The shape of the model trained, for the table's title: the ViT's input, patch (or hybrid stem), width, depth and heads;
    /// for a method without a ViT, its input side and map stride.</summary>
    internal static string ShapeText(IMethodConfig model) => model.BackboneConfig is { } c
        ? $"input {c.ImageSize}, " + (c.Stem == VitStem.Patch ? $"patch {c.PatchSize}" : $"stem {VitStems.Name(c.Stem)}" + (c.FreezeStem ? " (frozen)" : "")) +
          $", dim {c.EmbedDim}, depth {c.Depth}, heads {c.NumHeads}"
        : $"input {model.ImageSize}, map stride {model.MapStride}";
}
