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
        var cmd = new Command("eval", "Score predicted segmentation masks against the ground truth of a split (per-class IoU, precision, recall, mIoU).");
        foreach (var o in new Option[] { pred, data, split, json, predIgnore, meanOver }) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var console = EvalCommand.StdoutConsole();
            var options = defaults with
            {
                PredIgnore = parseResult.GetValue(predIgnore) == "skip" ? PredIgnorePolicy.SkipPixel : PredIgnorePolicy.CountAsMissed,
                MeanRule = ParseRule(parseResult.GetValue(meanOver)!),
            };
            var splitName = parseResult.GetValue(split)!;
            var result = CliProgress.Run("evaluating", p =>
                SegmentationEvaluator.EvaluateDirectory(parseResult.GetValue(pred)!, parseResult.GetValue(data)!, splitName, options, p));
            console.Write(PerClassTable(result.Metrics, result.ClassNames, $"{splitName}: {result.NumImages} images"));
            console.MarkupLine($"mIoU [bold]{Pct(result.Metrics.MeanIou)}[/]  pixel accuracy {Pct(result.Metrics.PixelAccuracy)}  " +
                                   $"mean precision {Pct(result.Metrics.MeanPrecision)}  mean recall {Pct(result.Metrics.MeanRecall)}");
            var jsonPath = parseResult.GetValue(json);
            if (jsonPath != null)
            {
                EvaluationJson.Write(jsonPath, result);
                Console.WriteLine($"wrote {jsonPath}");
            }
            return 0;
        });
        return cmd;
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
