using System.CommandLine;
using Spectre.Console;
using WeakSeg.Evaluation;
using WeakSeg.Pipelines;
using WeakSeg.Refinement;
using WeakSeg.Cli.Options;
using WeakSeg.Cli.Output;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg eval-cam`: the CAM background-threshold sweep (MCTformer/WeakTr map evaluation) and the maps' artifact rate
/// (<see cref="MapArtifactRate"/>), both reading the pixel labels, and the CRF / random-walk comparison: parses the options, runs
/// <see cref="CamEvaluation.Run"/> (the pipeline's cam-eval stage runs the same) and prints its tables.</summary>
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
        var meanOver = MeanIouOption.Create(defaults.MeanRule,
            "Classes averaged into mIoU: 'union' (nanmean over classes in ground truth or prediction) or 'gt' (classes in the ground truth).");
        var compareCrf = new Option<bool>("--compare-crf")
        {
            Description = "Also score the maps after the dense CRF (unary from [threshold; maps]) at each variant's best threshold, in a comparison table.",
        };
        var crfPreset = new Option<string>("--crf-preset") { Description = $"CRF kernels for --compare-crf: {string.Join(", ", DenseCrfConfig.PresetNames)}.", DefaultValueFactory = _ => "psa" };
        var rwCams = new Option<string?>("--rw-cams") { Description = "Second maps directory (e.g. `weakseg affinity infer` output): swept too and listed as 'random walk' in the comparison table." };
        var cmd = new Command("eval-cam", "Score saved class maps against the ground truth for a sweep of background thresholds; report the best threshold.");
        foreach (var o in new Option[] { cams, data, split, thresholds, json, meanOver, compareCrf, crfPreset, rwCams }) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var console = CliConsole.Stdout();
            var splitName = parseResult.GetValue(split)!;
            var request = new CamEvaluationRequest
            {
                MapsDirectory = parseResult.GetValue(cams)!,
                DataRoot = parseResult.GetValue(data)!,
                Split = splitName,
                Sweep = defaults with
                {
                    Thresholds = CamThresholdSweep.ParseThresholds(parseResult.GetValue(thresholds)!),
                    MeanRule = MeanIouOption.Read(parseResult, meanOver),
                },
                EvaluationPath = parseResult.GetValue(json),
                Crf = parseResult.GetValue(compareCrf) ? DenseCrfConfig.FromPreset(parseResult.GetValue(crfPreset)!) : null,
                RandomWalkMaps = parseResult.GetValue(rwCams),
            };
            var evaluation = CamEvaluation.Run(request, new CliStageReporter());
            var result = evaluation.Sweep;
            var table = new Table().Title(Markup.Escape($"{splitName}: {result.NumImages} images"));
            table.AddColumn(new TableColumn("threshold").RightAligned());
            table.AddColumn(new TableColumn("mIoU %").RightAligned());
            table.AddColumn(new TableColumn("pixel acc. %").RightAligned());
            for (int i = 0; i < result.Thresholds.Count; i++)
            {
                var t = EvaluationJson.FormatThreshold(result.Thresholds[i]);
                var miou = CliConsole.Pct(result.Metrics[i].MeanIou);
                var acc = CliConsole.Pct(result.Metrics[i].PixelAccuracy);
                if (i == result.BestIndex) table.AddRow($"[bold green]{t}[/]", $"[bold green]{miou}[/]", $"[bold green]{acc}[/]");
                else table.AddRow(t, miou, acc);
            }
            console.Write(table);
            console.Write(CliConsole.PerClassTable(result.Best, result.ClassNames, $"per class at threshold {EvaluationJson.FormatThreshold(result.BestThreshold)}"));
            console.MarkupLine($"best mIoU [bold green]{CliConsole.Pct(result.BestMeanIou)}[/] at threshold [bold green]{EvaluationJson.FormatThreshold(result.BestThreshold)}[/]");
            var artifacts = evaluation.Artifacts;
            console.MarkupLine($"artifact rate (reads pixel labels): [bold]{CliConsole.Pct(artifacts.Rate)}[/] % of the present classes' map mass on ground-truth background ({artifacts.Pairs} image-class pairs)");
            if (evaluation.Comparison.Count > 0)
            {
                var comparison = new Table().Title(Markup.Escape($"refinement comparison ({splitName}, each at its best raw threshold)"));
                comparison.AddColumn("variant");
                comparison.AddColumn(new TableColumn("threshold").RightAligned());
                comparison.AddColumn(new TableColumn("mIoU %").RightAligned());
                foreach (var row in evaluation.Comparison)
                    comparison.AddRow(Markup.Escape(row.Variant), EvaluationJson.FormatThreshold(row.Threshold), CliConsole.Pct(row.MeanIou));
                console.Write(comparison);
            }
            if (request.EvaluationPath is { } jsonPath) Console.WriteLine($"wrote {jsonPath} and the sweep plot {evaluation.PlotPath}");
            return 0;
        });
        return cmd;
    }
}
