using System.CommandLine;
using Spectre.Console;
using WeakSeg.Evaluation;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg eval-cam`: the CAM background-threshold sweep (MCTformer/WeakTr map evaluation).</summary>
public static class EvalCamCommand
{
    public static Command Create()
    {
        var defaults = new CamSweepOptions();
        var cams = new Option<string>("--cams") { Description = "Directory of saved maps NAME.npy + NAME.classes.npy.", Required = true };
        var data = new Option<string>("--data") { Description = "Dataset root in VOC layout (ground truth masks).", Required = true };
        var split = new Option<string>("--split") { Description = "Split list ImageSets/Segmentation/SPLIT.txt (maps are usually scored on train).", DefaultValueFactory = _ => "train" };
        var thresholds = new Option<string>("--thresholds")
        {
            Description = "Background thresholds: START:STOP:STEP (inclusive) or a comma list.",
            DefaultValueFactory = _ => "0:0.6:0.05",
        };
        var json = new Option<string?>("--json") { Description = "Also write the sweep as JSON to this file." };
        var meanOver = new Option<string>("--miou-over")
        {
            Description = "Classes averaged into mIoU: 'union' (nanmean over classes in ground truth or prediction) or 'gt' (classes in the ground truth).",
            DefaultValueFactory = _ => EvalCommand.RuleOption(defaults.MeanRule),
        };
        meanOver.AcceptOnlyFromAmong("union", "gt");
        var cmd = new Command("eval-cam", "Score saved class maps against the ground truth for a sweep of background thresholds; report the best threshold.");
        foreach (var o in new Option[] { cams, data, split, thresholds, json, meanOver }) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var console = EvalCommand.StdoutConsole();
            var options = defaults with
            {
                Thresholds = CamThresholdSweep.ParseThresholds(parseResult.GetValue(thresholds)!),
                MeanRule = EvalCommand.ParseRule(parseResult.GetValue(meanOver)!),
            };
            var splitName = parseResult.GetValue(split)!;
            var result = CliProgress.Run("sweeping thresholds", p =>
                CamThresholdSweep.Evaluate(parseResult.GetValue(cams)!, parseResult.GetValue(data)!, splitName, options, p));
            var table = new Table().Title(Markup.Escape($"{splitName}: {result.NumImages} images"));
            table.AddColumn(new TableColumn("threshold").RightAligned());
            table.AddColumn(new TableColumn("mIoU %").RightAligned());
            table.AddColumn(new TableColumn("pixel acc. %").RightAligned());
            for (int i = 0; i < result.Thresholds.Count; i++)
            {
                var t = EvaluationJson.FormatThreshold(result.Thresholds[i]);
                var miou = EvalCommand.Pct(result.Metrics[i].MeanIou);
                var acc = EvalCommand.Pct(result.Metrics[i].PixelAccuracy);
                if (i == result.BestIndex) table.AddRow($"[bold green]{t}[/]", $"[bold green]{miou}[/]", $"[bold green]{acc}[/]");
                else table.AddRow(t, miou, acc);
            }
            console.Write(table);
            console.Write(EvalCommand.PerClassTable(result.Best, result.ClassNames, $"per class at threshold {EvaluationJson.FormatThreshold(result.BestThreshold)}"));
            console.MarkupLine($"best mIoU [bold green]{EvalCommand.Pct(result.BestMeanIou)}[/] at threshold [bold green]{EvaluationJson.FormatThreshold(result.BestThreshold)}[/]");
            var jsonPath = parseResult.GetValue(json);
            if (jsonPath != null)
            {
                EvaluationJson.Write(jsonPath, result, splitName);
                Console.WriteLine($"wrote {jsonPath}");
            }
            return 0;
        });
        return cmd;
    }
}
