using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using WeakSeg.Evaluation;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg eval`: mIoU, precision and recall of predicted masks against a split's ground truth.</summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var defaults = new SegmentationEvalOptions();
        var pred = new Option<string>("--pred") { Description = "Directory of predicted masks NAME.png (palette or grayscale class indices; 255 = no prediction).", Required = true };
        var data = new Option<string>("--data") { Description = "Dataset root in VOC layout (ground truth from SegmentationClass, else SegmentationClassAug).", Required = true };
        var split = new Option<string>("--split") { Description = "Split list ImageSets/Segmentation/SPLIT.txt.", DefaultValueFactory = _ => "val" };
        var json = new Option<string?>("--json") { Description = "Also write the metrics as JSON to this file." };
        var predIgnore = new Option<string>("--pred-ignore")
        {
            Description = "Predicted 255 pixels: 'missed' counts them as not predicted (false negatives); 'skip' drops them (ToCo's pseudo-label scoring).",
            DefaultValueFactory = _ => PolicyOption(defaults.PredIgnore),
        };
        predIgnore.AcceptOnlyFromAmong("missed", "skip");
        var meanOver = new Option<string>("--miou-over")
        {
            Description = "Classes averaged into mIoU: 'union' = classes in the ground truth or the prediction (nanmean, mmseg); 'gt' = classes in the ground truth (ToCo).",
            DefaultValueFactory = _ => RuleOption(defaults.MeanRule),
        };
        meanOver.AcceptOnlyFromAmong("union", "gt");
        var shard = ShardOption.Create();
        var partial = new Option<string?>("--partial")
        {
            Description = "With --shard i/N: write this shard's confusion matrix to this JSON file (no metrics); `weakseg eval-merge` adds the N files into the metrics of one evaluation.",
        };
        var cmd = new Command("eval", "Score predicted segmentation masks against the ground truth of a split (per-class IoU, precision, recall, mIoU).");
        foreach (var o in new Option[] { pred, data, split, json, predIgnore, meanOver, shard, partial }) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var console = EvalCommand.StdoutConsole();
            var options = defaults with
            {
                PredIgnore = parseResult.GetValue(predIgnore) == "skip" ? PredIgnorePolicy.SkipPixel : PredIgnorePolicy.CountAsMissed,
                MeanRule = ParseRule(parseResult.GetValue(meanOver)!),
            };
            var splitName = parseResult.GetValue(split)!;
            var part = ShardOption.Resolve(parseResult, shard);
            var partialPath = parseResult.GetValue(partial);
            bool shardJob = !part.IsWhole && part.Group is null;
            if (shardJob && partialPath is null)
                throw new WeakSegException($"--shard {part}: a shard scores only its images; pass --partial FILE to write its confusion matrix, then merge the N files with `weakseg eval-merge`");
            if (!shardJob && partialPath is not null) throw new WeakSegException("--partial is for --shard i/N jobs (one process or MPI ranks report the whole evaluation)");
            var result = CliProgress.Run("evaluating", p =>
                SegmentationEvaluator.EvaluateDirectory(parseResult.GetValue(pred)!, parseResult.GetValue(data)!, splitName, options, p, part));
            if (shardJob)
            {
                PartialEvaluationFile.Write(partialPath!, result, part, parseResult.GetValue(pred)!, parseResult.GetValue(data)!);
                Console.WriteLine($"shard {part}: {result.NumImages} images of {splitName}; wrote its confusion matrix to {partialPath} (merge all {part.Count} with `weakseg eval-merge`)");
                return 0;
            }
            Report(console, result, splitName, part.Group is { IsRoot: false } ? null : parseResult.GetValue(json));   // rank 0 writes for the job
            return 0;
        });
        return cmd;
    }

    /// <summary>The per-class table, the summary line and the optional --json file of an evaluation.</summary>
    internal static void Report(IAnsiConsole console, SegmentationEvaluation result, string splitName, string? jsonPath)
    {
        console.Write(PerClassTable(result.Metrics, result.ClassNames, $"{splitName}: {result.NumImages} images"));
        console.MarkupLine($"mIoU [bold]{Pct(result.Metrics.MeanIou)}[/]  pixel accuracy {Pct(result.Metrics.PixelAccuracy)}  " +
                               $"mean precision {Pct(result.Metrics.MeanPrecision)}  mean recall {Pct(result.Metrics.MeanRecall)}");
        if (jsonPath != null)
        {
            EvaluationJson.Write(jsonPath, result);
            Console.WriteLine($"wrote {jsonPath}");
        }
    }

    /// <summary>A Spectre console on the current <see cref="Console.Out"/> (follows redirection, e.g. in tests and pipes).</summary>
    internal static IAnsiConsole StdoutConsole() => AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });

    internal static string PolicyOption(PredIgnorePolicy p) => p == PredIgnorePolicy.SkipPixel ? "skip" : "missed";
    internal static string RuleOption(MeanIouRule r) => r == MeanIouRule.ClassesInGroundTruth ? "gt" : "union";
    internal static MeanIouRule ParseRule(string s) => s == "gt" ? MeanIouRule.ClassesInGroundTruth : MeanIouRule.ClassesWithUnion;

    /// <summary>Percent with one decimal, "-" when undefined.</summary>
    internal static string Pct(double v) => double.IsNaN(v) ? "-" : (100 * v).ToString("F1", CultureInfo.InvariantCulture);

    internal static Table PerClassTable(SegmentationMetrics m, IReadOnlyList<string> names, string title)
    {
        var table = new Table().Title(Markup.Escape(title));
        table.AddColumn("class");
        foreach (var h in new[] { "IoU %", "precision %", "recall %" }) table.AddColumn(new TableColumn(h).RightAligned());
        for (int c = 0; c < m.NumClasses; c++)
            table.AddRow(Markup.Escape(c < names.Count ? names[c] : "class" + c), Pct(m.Iou[c]), Pct(m.Precision[c]), Pct(m.Recall[c]));
        table.AddRow("[bold]mean[/]", $"[bold]{Pct(m.MeanIou)}[/]", Pct(m.MeanPrecision), Pct(m.MeanRecall));
        return table;
    }
}
