using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using WeakSeg.Data;
using WeakSeg.IO;

namespace WeakSeg.Visualization;

/// <summary>
/// <c>DIR/compare.json</c> and <c>DIR/compare.html</c> for pipeline runs in <c>DIR/NAME/</c>: one table across the runs (values copied
/// from each run's report.json), mIoU bars, and the same example images side by side for every run. A run without a record yet is
/// listed as not run.
/// </summary>
public static class ComparisonReport
{
    public const string JsonFile = "compare.json", HtmlFile = "compare.html";

    /// <summary>The report.json fields copied into compare.json (and shown in the table).</summary>
    public static readonly IReadOnlyList<string> CopiedFields =
        ["method", "map", "cam_miou", "threshold", "threshold_source", "pseudo_miou", "val_miou", "upper_bound_miou", "weak_full_ratio", "complete", "reused_stages"];

    static readonly (string Key, string Label)[] Bars = [("cam_miou", "CAM"), ("pseudo_miou", "pseudo labels"), ("val_miou", "val"), ("upper_bound_miou", "upper bound")];

    /// <summary>Writes both files for the runs <c>DIR/NAME</c> of <paramref name="runs"/> (in that order); returns their paths.</summary>
    public static (string Json, string Html) Write(string directory, IReadOnlyList<string> runs)
    {
        var dir = Path.GetFullPath(directory);
        var folders = runs.Select(name => (Name: name, Folder: Directory.Exists(Path.Combine(dir, name)) ? RunFolder.Open(Path.Combine(dir, name)) : null)).ToList();
        var json = new JsonObject
        {
            ["format_version"] = 1,
            ["runs"] = new JsonArray(folders.Select(f =>
            {
                var row = new JsonObject { ["folder"] = f.Name, ["report_json"] = $"{f.Name}/{RunFolder.PipelineRecord}", ["report_html"] = $"{f.Name}/{RunReport.FileName}" };
                foreach (var key in CopiedFields) row[key] = f.Folder?.Record[key]?.DeepClone();
                return (JsonNode?)row;
            }).ToArray()),
        };
        var jsonPath = Path.Combine(dir, JsonFile);
        AtomicFile.WriteAllText(jsonPath, IO.WeakSegJson.Text(json) + "\n");
        var htmlPath = Path.Combine(dir, HtmlFile);
        AtomicFile.WriteAllText(htmlPath, Render(dir, json, folders));
        return (jsonPath, htmlPath);
    }

    static string Render(string dir, JsonObject json, IReadOnlyList<(string Name, RunFolder? Folder)> folders)
    {
        var html = new ReportHtml();
        html.Heading(1, "Method comparison");
        html.Raw($"<p class=\"sub\">Folder <code>{ReportHtml.Escape(dir)}</code>: one pipeline run per method, with the same options. The values are those of each run's " +
                 $"report.json (also in {JsonFile}).</p>");
        var rows = json["runs"]!.AsArray().Select(r => r!.AsObject()).ToList();
        html.Heading(2, "Metrics");
        html.Table(["run", "map", .. Bars.Select(b => b.Label + " mIoU"), "weak / full", "complete", "report"], rows.Select(r =>
        {
            var name = r["folder"]!.GetValue<string>();
            bool exists = File.Exists(Path.Combine(dir, name, RunFolder.PipelineRecord));
            return (IReadOnlyList<string>)
            [
                ReportHtml.Text(name), ReportHtml.Text(r["map"]?.ToString() ?? ""),
                .. Bars.Select(b => ReportHtml.Metric($"{name}.{b.Key}", RunFolder.Number(r[b.Key]))),
                ReportHtml.Metric($"{name}.weak_full_ratio", RunFolder.Number(r["weak_full_ratio"]), percent: false),
                exists ? ReportHtml.Text(r["complete"]?.ToString() ?? "") : ReportHtml.Missing(ReportHtml.NotRun),
                File.Exists(Path.Combine(dir, name, RunReport.FileName))
                    ? $"<td><a href=\"{ReportHtml.Escape(name)}/{RunReport.FileName}\">{RunReport.FileName}</a></td>" : ReportHtml.Missing(ReportHtml.NotRun),
            ];
        }), id: "compare");

        html.Heading(2, "mIoU by method");
        var groups = rows.Select(r => r["folder"]!.GetValue<string>()).ToList();
        html.Raw("<div class=\"plots\">");
        html.Figure(TrainingPlots.GroupedBarsPng(groups, Bars.Select(b => (b.Label, (IReadOnlyList<double?>)rows.Select(r => RunFolder.Number(r[b.Key])).ToList())).ToList(),
            "mIoU by method", "mIoU", 900, 420), "mIoU of each stage by method (a missing bar: not run or skipped)", wide: true);
        html.Raw("</div>");

        var present = folders.Where(f => f.Folder is not null).Select(f => (f.Name, Folder: f.Folder!)).ToList();
        Examples(html, present, val: false);
        Examples(html, present, val: true);
        return html.Page("Method comparison");
    }

    /// <summary>The same images for every run: the dataset and seed of the first run; ranked by the mean over the runs of the image's
    /// pseudo-label (train) or first-segmenter prediction (val) mIoU.</summary>
    static void Examples(ReportHtml html, IReadOnlyList<(string Name, RunFolder Folder)> runs, bool val)
    {
        var reference = runs.FirstOrDefault(r => r.Folder.DataRoot is not null && Directory.Exists(r.Folder.DataRoot)).Folder;
        var split = reference is null ? (val ? "val" : "train") : val ? reference.ValSplit : reference.TrainSplit;
        html.Heading(2, val ? $"Examples: {split} split (segmenter predictions)" : $"Examples: {split} split (map and pseudo label)");
        if (reference is null) { html.Paragraph($"{ReportHtml.NotRun}: no run has a dataset yet."); return; }
        RunReport.Guarded(html, "examples", () =>
        {
            var dataset = VocDataset.Open(reference.DataRoot!, split);
            string? LabelsOf(RunFolder run) => val ? run.Segmenters.FirstOrDefault()?.PredictionDirectory : run.PseudoDirectory;
            var chosen = ReportExamples.Choose(dataset.Samples.Select(s => s.Name).ToList(), name =>
            {
                var mask = RunReport.Mask(dataset, name);
                var scores = runs.Select(r => ReportExamples.ImageMeanIou(ReportExamples.ReadLabels(LabelsOf(r.Folder), name), mask, dataset.ClassNames.Count))
                    .OfType<double>().ToList();
                return scores.Count > 0 ? scores.Average() : null;
            }, reference.Seed, RunReport.RandomExamples, RunReport.WorstExamples);
            html.Paragraph($"{RunReport.RandomExamples} images of a shuffle seeded with {reference.Seed}, then the {RunReport.WorstExamples} with the lowest " +
                           $"{(val ? "prediction" : "pseudo-label")} mIoU averaged over the methods." + (val ? "" : " Each method's cell: its map (top), its pseudo label (bottom)."));
            html.ClassLegend(dataset.ClassNames.All);
            html.Table(["example", "image", "ground truth", .. runs.Select(r => r.Name)], chosen.Select(example =>
            {
                var image = ImageCodec.Load(dataset.Samples.First(s => s.Name == example.Name).ImagePath);
                var mask = RunReport.Mask(dataset, example.Name);
                return (IReadOnlyList<string>)
                [
                    ReportHtml.Text(RunReport.Caption(example, "mean mIoU")),
                    ReportExamples.Cell(image, "image"),
                    mask is null ? ReportHtml.Missing("no mask") : ReportExamples.Cell(OverlayRenderer.LabelTile(image, mask), "ground truth"),
                    .. runs.Select(r => MethodCell(r.Folder, image, example.Name, val ? null : r.Folder.MapsDirectory, LabelsOf(r.Folder), val ? "prediction" : "pseudo label")),
                ];
            }), id: val ? "val-examples" : "train-examples", cssClass: "grid");
        });
    }

    static string MethodCell(RunFolder run, RgbImage image, string name, string? mapsDirectory, string? labelsDirectory, string labelsCaption)
    {
        var cell = new StringBuilder("<td>");
        var captions = new List<string>();
        if (mapsDirectory is not null && ReportExamples.MapTile(image, mapsDirectory, name) is { } map)
        {
            cell.Append(ReportHtml.Image(ReportExamples.EncodeThumbnail(map), $"{run.Method} map"));
            captions.Add("map");
        }
        if (ReportExamples.ReadLabels(labelsDirectory, name) is { } labels)
        {
            cell.Append(ReportHtml.Image(ReportExamples.EncodeThumbnail(OverlayRenderer.LabelTile(image, labels)), $"{run.Method} {labelsCaption}"));
            captions.Add(labelsCaption);
        }
        if (captions.Count == 0) return ReportHtml.Missing(ReportHtml.NotRun);
        return cell.Append(ReportHtml.Escape(string.Join(" / ", captions))).Append("</td>").ToString();
    }
}
