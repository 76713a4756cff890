using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using WeakSeg.Data.Synthetic;
using WeakSeg.Pipelines;
using WeakSeg.Cli.Options;
using WeakSeg.Cli.Output;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg demo`: the whole MCTformer+ pipeline on the built-in benchmark or a VOC-layout folder (and, with --compare, the baselines).</summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var defaults = new DemoOptions();
        var outDir = new Option<string>("--out") { Description = "Output folder (data/, runs/, cams/, pseudo/, overlays/, metrics.json, report.html).", DefaultValueFactory = _ => defaults.OutDirectory };
        var data = new Option<string?>("--data") { Description = $"Dataset root in VOC layout to run on instead of the built-in benchmark (split '{DemoPipeline.Split}'; image labels from labels.txt, else from the masks). Without a mask for every image, the metrics that read masks are skipped and listed." };
        var compare = new Option<bool>("--compare") { Description = "Also train MCTformer-V1, MCTformer-V2, vit-cls and cam; table of CAM mIoU with and without patch-affinity refinement." };
        var runtime = new RuntimeOptions(RuntimePart.Seed | RuntimePart.Threads, "every training stage",
            RuntimeOptions.Defaults with { Seed = defaults.Seed, Threads = defaults.Threads });
        var scales = ScalesOption.Create("Comma-separated inference scales.", defaults.Localization.Scales);
        var threshold = new Option<double?>("--threshold") { Description = "Background threshold of the pseudo labels (default: the method's preset value from its official code; it reads no pixel label)." };
        var oracleThreshold = new Option<bool>("--oracle-threshold") { Description = "Take the pseudo-label threshold from the sweep on the train masks (uses pixel labels; marked \"oracle\" in metrics.json)." };
        // Hidden options for tests and quick looks.
        var trainImages = new Option<int>("--train-images") { Hidden = true, DefaultValueFactory = _ => defaults.Data.TrainImages };
        var valImages = new Option<int>("--val-images") { Hidden = true, DefaultValueFactory = _ => defaults.Data.ValImages };
        var imageSize = new Option<int>("--data-size") { Hidden = true, DefaultValueFactory = _ => defaults.Data.ImageSize };
        var steps = new Option<long?>("--steps") { Hidden = true };
        var overlays = new Option<int>("--overlays") { Hidden = true, DefaultValueFactory = _ => defaults.Overlays };
        var batchSize = new Option<int?>("--batch-size") { Hidden = true };

        var cmd = new Command("demo", "End-to-end demo on the built-in benchmark (or --data DIR): synth → train MCTformer+ (cpu preset: ViT on the ImageNet ResNet-18 stem) → maps → pseudo labels (the method's preset threshold, no mask read) → metrics from the masks (threshold sweep, mIoU).");
        foreach (var o in new Option[] { outDir, data, compare, runtime.Seed, runtime.Threads, scales, threshold, oracleThreshold, trainImages, valImages, imageSize, steps, overlays, batchSize }) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var options = defaults with
            {
                OutDirectory = parseResult.GetValue(outDir)!,
                DataRoot = parseResult.GetValue(data),
                Compare = parseResult.GetValue(compare),
                Seed = runtime.SeedValue(parseResult),
                Threads = runtime.ThreadsValue(parseResult),
                Localization = defaults.Localization with { Scales = ScalesOption.Parse(parseResult.GetValue(scales)!) },
                Data = defaults.Data with
                {
                    TrainImages = parseResult.GetValue(trainImages),
                    ValImages = parseResult.GetValue(valImages),
                    ImageSize = parseResult.GetValue(imageSize),
                },
                Steps = parseResult.GetValue(steps),
                BatchSize = parseResult.GetValue(batchSize),
                Overlays = parseResult.GetValue(overlays),
                PseudoThreshold = parseResult.GetValue(threshold),
                OracleThreshold = parseResult.GetValue(oracleThreshold),
            };
            using var cancel = CancelOnCtrlC.Install();
            return cancel.Run(token => Report(options, DemoPipeline.Run(options, new CliStageReporter(), token)),
                "run the same command again to resume (finished stages are skipped, training continues from its checkpoint)");
        });
        return cmd;
    }

    static int Report(DemoOptions options, DemoResult result)
    {
        var inv = CultureInfo.InvariantCulture;
        var console = CliConsole.Stdout();
        if (result.Sweep is { } sweep)
            console.Write(CliConsole.PerClassTable(sweep.Best, sweep.ClassNames,
                string.Create(inv, $"{options.Method} CAM mIoU per class ({DemoPipeline.Split}, best threshold {sweep.BestThreshold:0.00}, reads masks)")));
        if (result.Comparison.Count > 0) console.Write(ComparisonTable(result.Comparison));
        Console.WriteLine(string.Create(inv, $"pseudo labels at threshold {result.Threshold:0.00} ({result.ThresholdSource}): {result.PseudoDirectory}"));
        var time = string.Create(inv, $"{result.Seconds:F0} s ({string.Join(", ", result.StageSeconds.Select(kv => $"{kv.Key} {kv.Value:F0} s"))})");
        if (result.Sweep is not null)
            Console.WriteLine(string.Create(inv,
                $"metrics (read the train masks): CAM mIoU (best threshold) {100 * result.CamMeanIou:F1} % at {result.Sweep.BestThreshold:0.00}; " +
                $"pseudo-label mIoU {100 * result.PseudoMeanIou:F1} %; {time}"));
        else Console.WriteLine($"no metric (they read the train masks); {time}");
        foreach (var skipped in result.SkippedMetrics) Console.WriteLine($"skipped {skipped}");
        Console.WriteLine($"wrote {result.ReportPath} (the pipeline's report fields; stages in {Path.Combine(Path.GetDirectoryName(result.ReportPath)!, "stages")})");
        Console.WriteLine($"wrote {result.MetricsPath}");
        Console.WriteLine($"wrote {Path.Combine(Path.GetDirectoryName(result.MetricsPath)!, WeakSeg.Visualization.RunReport.FileName)} (open it in a browser)");
        return 0;
    }

    static Table ComparisonTable(IReadOnlyList<ComparisonRow> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        var table = new Table().Title("CAM mIoU % on train (best threshold, reads masks)");
        table.AddColumn("method");
        table.AddColumn(new TableColumn("map").RightAligned());
        table.AddColumn(new TableColumn("+ affinity").RightAligned());
        foreach (var method in rows.Select(r => r.Method).Distinct())
        {
            string Cell(Methods.LocalizationMapKind kind) => rows.FirstOrDefault(r => r.Method == method && r.Map == kind) is { } r
                ? string.Create(inv, $"{100 * r.MeanIou:F1} (t {r.Threshold:0.00})") : "-";
            table.AddRow(method, Cell(Methods.LocalizationMapKind.Fused), Cell(Methods.LocalizationMapKind.Refined));
        }
        return table;
    }
}
