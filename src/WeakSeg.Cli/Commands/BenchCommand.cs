using System.CommandLine;
using System.Globalization;
using WeakSeg.Refinement;
using WeakSeg.Cli.Output;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg bench &lt;what&gt;`: end-to-end timings. One subcommand per benchmark; add yours to <see cref="Subcommands"/>.</summary>
public static class BenchCommand
{
    /// <summary>The benchmarks under `weakseg bench` (one line each).</summary>
    static IEnumerable<Command> Subcommands()
    {
        yield return CrfBenchCommand.Create();
        yield return BenchTrainCommand.Create();
        yield return BenchSegCommand.Create();
    }

    public static Command Create()
    {
        var cmd = new Command("bench", "End-to-end timings on deterministic synthetic inputs (median of several runs after a warm-up).");
        foreach (var sub in Subcommands()) cmd.Subcommands.Add(sub);
        return cmd;
    }
}

/// <summary>`weakseg bench crf`: times <see cref="DenseCrf.Refine"/> on a synthetic image.</summary>
public static class CrfBenchCommand
{
    public static Command Create()
    {
        var defaults = new DenseCrfBenchmarkOptions();
        var width = new Option<int>("--width") { Description = "Image width in pixels.", DefaultValueFactory = _ => defaults.Width };
        var height = new Option<int>("--height") { Description = "Image height in pixels.", DefaultValueFactory = _ => defaults.Height };
        var labels = new Option<int>("--labels") { Description = "Number of labels K (2..256).", DefaultValueFactory = _ => defaults.Labels };
        var iterations = new Option<int>("--iterations") { Description = "Mean-field iterations.", DefaultValueFactory = _ => defaults.Config.Iterations };
        var preset = new Option<string>("--preset")
        {
            Description = $"Kernel parameters: {string.Join(", ", DenseCrfConfig.PresetNames)}.",
            DefaultValueFactory = _ => "psa",
        };
        var threads = new Option<int?>("--threads") { Description = "Threads (default: all processors)." };
        var runs = new Option<int>("--runs") { Description = "Measured runs (the median is reported).", DefaultValueFactory = _ => defaults.MeasuredRuns };
        var warmup = new Option<int>("--warmup") { Description = "Untimed warm-up runs.", DefaultValueFactory = _ => defaults.WarmupRuns };
        var json = new Option<string?>("--json") { Description = "Also write the figures as JSON to this file." };

        var cmd = new Command("crf", "Time the native dense CRF (permutohedral mean field) on a synthetic image.");
        foreach (var o in new Option[] { width, height, labels, iterations, preset, threads, runs, warmup, json }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            var config = DenseCrfConfig.FromPreset(parse.GetValue(preset)!) with
            {
                Iterations = parse.GetValue(iterations),
                MaxThreads = parse.GetValue(threads),
            };
            var options = new DenseCrfBenchmarkOptions
            {
                Width = parse.GetValue(width),
                Height = parse.GetValue(height),
                Labels = parse.GetValue(labels),
                Config = config,
                MeasuredRuns = parse.GetValue(runs),
                WarmupRuns = parse.GetValue(warmup),
            };
            var report = CliProgress.Run("bench crf", p => DenseCrfBenchmark.Run(options, p));
            var c = CultureInfo.InvariantCulture;
            Console.WriteLine($"dense CRF {report.Width}×{report.Height}, {report.Labels} labels, {report.Iterations} iterations, " +
                              $"{report.Threads} threads, preset {parse.GetValue(preset)} (median of {report.Runs})");
            Console.WriteLine("| measure | seconds |");
            Console.WriteLine("| --- | --- |");
            Console.WriteLine(string.Format(c, "| per image | {0:F4} |", report.SecondsPerImage));
            Console.WriteLine(string.Format(c, "| lattice build (both kernels) | {0:F4} |", report.SecondsLatticeBuild));
            Console.WriteLine(string.Format(c, "| lattice build, gaussian | {0:F4} |", report.SecondsLatticeBuildGaussian));
            Console.WriteLine(string.Format(c, "| lattice build, bilateral | {0:F4} |", report.SecondsLatticeBuildBilateral));
            Console.WriteLine(string.Format(c, "| per iteration | {0:F4} |", report.SecondsPerIteration));
            Console.WriteLine(string.Format(c, "| all iterations | {0:F4} |", report.SecondsInference));
            Console.WriteLine(string.Format(c, "lattice vertices: gaussian {0}, bilateral {1}; labels changed by the CRF: {2:P1}",
                                            report.LatticeVerticesGaussian, report.LatticeVerticesBilateral, report.LabelsChangedFraction));
            if (parse.GetValue(json) is { } path)
            {
                CliConsole.WriteJsonFile(path, report.ToJson());
                Console.WriteLine($"wrote {path}");
            }
            return 0;
        });
        return cmd;
    }
}
