using System.Globalization;
using System.Text.Json.Nodes;
using WeakSeg.Data;
using WeakSeg.IO;

namespace WeakSeg.Visualization;

/// <summary>
/// <c>RUN/report.html</c>: one self-contained page (images embedded, no script, no network) made from a run folder's records only
/// (<see cref="RunFolder"/>: report.json or metrics.json, the stage ledger, the eval-*.json files, each training's metrics.jsonl, the
/// maps, pseudo labels and predictions on disk): settings, the metric table, per-class IoU, the stages, loss curves, the threshold sweep
/// and a grid of examples (a seeded choice plus the worst by image mIoU). Whatever has no record yet is marked "not run".
/// </summary>
public static class RunReport
{
    public const string FileName = "report.html";

    /// <summary>Examples of each grid chosen at random (seeded by the run's seed) and chosen as the worst by image mIoU.</summary>
    public const int RandomExamples = 4, WorstExamples = 2;

    /// <summary>Writes <c>RUN/report.html</c> (atomically) and returns its path.</summary>
    public static string Write(string runDirectory)
    {
        var run = RunFolder.Open(runDirectory);
        var path = Path.Combine(run.Directory, FileName);
        AtomicFile.WriteAllText(path, Render(run));
        return path;
    }

    public static string Render(RunFolder run)
    {
        var html = new ReportHtml();
        html.Heading(1, $"{run.Method} {run.Kind} report");
        html.Raw($"<p class=\"sub\">Run folder <code>{ReportHtml.Escape(run.Directory)}</code>. Every number on this page is read from " +
                 $"<code>{ReportHtml.Escape(Path.GetFileName(run.RecordPath))}</code> and the files its stages wrote.</p>");
        if (run.Record.Count == 0) html.Paragraph($"{Path.GetFileName(run.RecordPath)} is not written yet: the run stopped before its first metric.");

        html.Heading(2, "Metrics");
        html.Table(["metric", "value"], run.Metrics.Select(m => (IReadOnlyList<string>)
            [ReportHtml.Text(m.Label), ReportHtml.Metric(m.Key, m.Value, m.Percent, m.Missing)]), id: "metrics");

        PerClass(html, run);

        html.Heading(2, "Settings");
        html.Table(["setting", "value"], run.Settings.Select(s => (IReadOnlyList<string>)[ReportHtml.Text(s.Key), ReportHtml.Text(s.Value)]), id: "settings");

        html.Heading(2, "Stages");
        html.Table(["stage", "status", "seconds", "this invocation"], run.Stages.Select(s => (IReadOnlyList<string>)
        [
            ReportHtml.Text(s.Name),
            s.Status == "done" ? ReportHtml.Text(s.Status) : ReportHtml.Missing(s.Status),
            s.Seconds is { } sec ? $"<td class=\"num\">{sec.ToString("0.0", CultureInfo.InvariantCulture)}</td>" : ReportHtml.Text(""),
            ReportHtml.Text(s.Reused switch { true => "reused", false => "ran", null => "" }),
        ]), id: "stages");

        html.Heading(2, "Training loss");
        html.Raw("<div class=\"plots\">");
        if (run.Trainings.Count == 0) html.Paragraph("No training: " + ReportHtml.NotRun + ".");
        foreach (var training in run.Trainings)
        {
            var metrics = new Training.RunDirectory(training.RunDirectory).MetricsPath;
            if (!File.Exists(metrics)) { html.Paragraph($"{training.Label}: {ReportHtml.NotRun} (no {metrics})."); continue; }
            Guarded(html, training.Label, () =>
            {
                var points = TrainingPlots.ReadMetrics(metrics);
                html.Figure(TrainingPlots.LossCurvePng(points, training.Label, 700, 400, metrics),
                    $"{training.Label}: loss and learning rate of {points.Count} logged step{(points.Count == 1 ? "" : "s")} ({Path.GetRelativePath(run.Directory, metrics)})");
            });
        }
        html.Raw("</div>");

        html.Heading(2, "CAM threshold sweep");
        if (RunFolder.ReadOptional(run.CamEvalPath) is not { } camEval) html.Paragraph($"{ReportHtml.NotRun} (no {run.CamEvalPath ?? "eval-cam json"}).");
        else Guarded(html, "threshold sweep", () =>
        {
            var points = (camEval["miou_by_threshold"] as JsonObject ?? new JsonObject())
                .Select(kv => (T: double.Parse(kv.Key, CultureInfo.InvariantCulture), M: RunFolder.Number(kv.Value)))
                .Where(p => p.M is not null).ToList();
            html.Raw("<div class=\"plots\">");
            html.Figure(TrainingPlots.ThresholdSweepPng(points.Select(p => p.T).ToList(), points.Select(p => p.M!.Value).ToList(), run.CamEvalPath!, 700, 400),
                $"mIoU of the maps against the background threshold ({Path.GetRelativePath(run.Directory, run.CamEvalPath!)})");
            html.Raw("</div>");
        });

        TrainExamples(html, run);
        ValExamples(html, run);
        return html.Page($"{run.Method} {run.Kind} report");
    }

    /// <summary>Runs a section; a record that cannot be read becomes a line on the page naming it, not a failed report.</summary>
    internal static void Guarded(ReportHtml html, string what, Action section)
    {
        try { section(); }
        catch (WeakSegException e) { html.Paragraph($"{what}: could not be read: {e.Message}"); }
    }

    static void PerClass(ReportHtml html, RunFolder run)
    {
        var columns = new List<(string Key, string Label, JsonObject? Eval)>
        {
            ("cam", "CAM (best threshold)", RunFolder.ReadOptional(run.CamEvalPath)),
            ("pseudo", "pseudo labels", RunFolder.ReadOptional(run.PseudoEvalPath)),
        };
        columns.AddRange(run.Segmenters.Select(s => (s.Key, s.Label, RunFolder.ReadOptional(s.EvalPath))));
        var classes = columns.Select(c => c.Eval?["per_class"] as JsonObject).OfType<JsonObject>().FirstOrDefault()?.Select(kv => kv.Key).ToList();
        html.Heading(2, "Per-class IoU");
        if (classes is null) { html.Paragraph($"{ReportHtml.NotRun}: no evaluation recorded yet."); return; }
        var rows = classes.Select(name => (IReadOnlyList<string>)[ReportHtml.Text(name),
            .. columns.Select(c => ReportHtml.Metric($"{c.Key}.per_class.{name}", RunFolder.Number(c.Eval?["per_class"]?[name]?["iou"])))]).ToList();
        rows.Add([ReportHtml.Text("mean (recorded)"), .. columns.Select(c => ReportHtml.Metric($"{c.Key}.miou",
            RunFolder.Number(c.Eval?["miou"] ?? c.Eval?["best_miou"])))]);
        html.Table(["class", .. columns.Select(c => c.Label)], rows, id: "per-class");
    }

    static void TrainExamples(ReportHtml html, RunFolder run)
    {
        html.Heading(2, $"Examples: {run.TrainSplit} split (maps and pseudo labels)");
        if (run.DataRoot is null) { html.Paragraph($"{ReportHtml.NotRun}: no dataset recorded."); return; }
        Guarded(html, "examples", () =>
        {
            var dataset = VocDataset.Open(run.DataRoot, run.TrainSplit);
            var chosen = ReportExamples.Choose(dataset.Samples.Select(s => s.Name).ToList(),
                name => ReportExamples.ImageMeanIou(ReportExamples.ReadLabels(run.PseudoDirectory, name), Mask(dataset, name), dataset.ClassNames.Count),
                run.Seed, RandomExamples, WorstExamples);
            html.Paragraph(chosen.Any(c => c.Score is not null)
                ? $"{RandomExamples} images of a shuffle seeded with {run.Seed}, then the {WorstExamples} with the lowest pseudo-label mIoU among the first " +
                  "200 of that shuffle. Map: the largest value over the image's classes, turbo colours over the image."
                : $"{RandomExamples} images of a shuffle seeded with {run.Seed}; none is ranked by pseudo-label mIoU (no ground-truth mask to score them). " +
                  "Map: the largest value over the image's classes, turbo colours over the image.");
            html.ClassLegend(dataset.ClassNames.All);
            html.Table(["example", "image", "ground truth", "map", "pseudo label"], chosen.Select(example =>
            {
                var image = ImageCodec.Load(dataset.Samples.First(s => s.Name == example.Name).ImagePath);
                var mask = Mask(dataset, example.Name);
                var map = ReportExamples.MapTile(image, run.MapsDirectory, example.Name);
                var pseudo = ReportExamples.ReadLabels(run.PseudoDirectory, example.Name);
                return (IReadOnlyList<string>)
                [
                    ReportHtml.Text(Caption(example, "pseudo-label mIoU")),
                    ReportExamples.Cell(image, "image"),
                    mask is null ? ReportHtml.Missing("no mask") : ReportExamples.Cell(OverlayRenderer.LabelTile(image, mask), "ground truth"),
                    map is null ? ReportHtml.Missing(ReportHtml.NotRun) : ReportExamples.Cell(map, "map"),
                    pseudo is null ? ReportHtml.Missing(ReportHtml.NotRun) : ReportExamples.Cell(OverlayRenderer.LabelTile(image, pseudo), "pseudo label"),
                ];
            }), id: "train-examples", cssClass: "grid");
        });
    }

    static void ValExamples(ReportHtml html, RunFolder run)
    {
        if (run.Kind != "pipeline") return;
        html.Heading(2, $"Examples: {run.ValSplit} split (segmenter predictions)");
        if (run.DataRoot is null || run.Segmenters.Count == 0) { html.Paragraph($"{ReportHtml.NotRun}: no segmenter trained yet."); return; }
        Guarded(html, "examples", () =>
        {
            var dataset = VocDataset.Open(run.DataRoot, run.ValSplit);
            var first = run.Segmenters[0];
            var chosen = ReportExamples.Choose(dataset.Samples.Select(s => s.Name).ToList(),
                name => ReportExamples.ImageMeanIou(ReportExamples.ReadLabels(first.PredictionDirectory, name), Mask(dataset, name), dataset.ClassNames.Count),
                run.Seed, RandomExamples, WorstExamples);
            html.Paragraph($"Ranked by the mIoU of the first segmenter's prediction ({first.Label}).");
            html.Table(["example", "image", "ground truth", .. run.Segmenters.Select(s => s.Label)], chosen.Select(example =>
            {
                var image = ImageCodec.Load(dataset.Samples.First(s => s.Name == example.Name).ImagePath);
                var mask = Mask(dataset, example.Name);
                return (IReadOnlyList<string>)
                [
                    ReportHtml.Text(Caption(example, "prediction mIoU")),
                    ReportExamples.Cell(image, "image"),
                    mask is null ? ReportHtml.Missing("no mask") : ReportExamples.Cell(OverlayRenderer.LabelTile(image, mask), "ground truth"),
                    .. run.Segmenters.Select(s => ReportExamples.ReadLabels(s.PredictionDirectory, example.Name) is { } prediction
                        ? ReportExamples.Cell(OverlayRenderer.LabelTile(image, prediction), "prediction") : ReportHtml.Missing(ReportHtml.NotRun)),
                ];
            }), id: "val-examples", cssClass: "grid");
        });
    }

    internal static LabelMap? Mask(VocDataset dataset, string name) =>
        dataset.Samples.FirstOrDefault(s => s.Name == name) is { } sample ? VocDataset.LoadMask(sample, dataset.NumClasses) : null;

    internal static string Caption(ChosenExample example, string scoreName) =>
        $"{example.Name} ({example.Reason}{(example.Score is { } s ? $", {scoreName} {ReportHtml.Percent(s)}" : "")})";
}
