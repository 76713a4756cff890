using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using WeakSeg.Data;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;
using WeakSeg.Visualization;

namespace WeakSeg.Tests.Visualization;

/// <summary>One tiny but complete pipeline run (8 train + 2 val images of 32 px, 4 steps per training), shared by the report tests.</summary>
public sealed class TinyPipelineRun : IDisposable
{
    readonly TempDir _dir = TestPaths.NewTempDir();
    public string Data { get; }
    public string Run { get; }
    public WsssPipelineReport Report { get; }

    public TinyPipelineRun()
    {
        Data = PipelineTestData.MakeData(_dir.File("data"));
        Run = _dir.File("run");
        Report = WsssPipeline.Run(PipelineTestData.TinyOptions(Data, Run));
    }

    /// <summary>A copy of the run folder to damage.</summary>
    public string CopyTo(string destination)
    {
        foreach (var file in Directory.GetFiles(Run, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(destination, Path.GetRelativePath(Run, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return destination;
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>The page's recorded values: every <c>data-key</c> with its <c>data-value</c> (null for a missing value).</summary>
static class ReportPage
{
    static readonly Regex Cell = new("data-key=\"([^\"]+)\"(?: data-value=\"([^\"]+)\")?", RegexOptions.Compiled);
    static readonly Regex ImageSource = new("<img src=\"([^\"]+)\"", RegexOptions.Compiled);

    public static Dictionary<string, double?> Values(string html) => Cell.Matches(html).ToDictionary(m => System.Net.WebUtility.HtmlDecode(m.Groups[1].Value),
        m => m.Groups[2].Success ? double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) : (double?)null);

    public static List<string> Images(string html) => ImageSource.Matches(html).Select(m => m.Groups[1].Value).ToList();

    /// <summary>The rows of the table with this id.</summary>
    public static List<string> Rows(string html, string id)
    {
        int start = html.IndexOf($"<table id=\"{id}\"", StringComparison.Ordinal);
        Assert.True(start >= 0, $"no table {id}");
        var table = html[start..html.IndexOf("</table>", start, StringComparison.Ordinal)];
        return table.Split("<tr>").Skip(2).ToList();                                         // [0] before the header, [1] the header
    }

    /// <summary>Every image is an embedded PNG that decodes; nothing on the page points to the network.</summary>
    public static void AssertSelfContained(string html)
    {
        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        Assert.DoesNotContain("<script", html);
        foreach (var src in Images(html))
        {
            Assert.StartsWith("data:image/png;base64,", src);
            var image = ImageCodec.Decode(Convert.FromBase64String(src["data:image/png;base64,".Length..]), "report image");
            Assert.True(image.Width > 0 && image.Height > 0);
        }
    }
}

[Collection("Torch")]
public class RunReportTests(TinyPipelineRun run) : IClassFixture<TinyPipelineRun>
{
    static JsonObject Json(string path) => JsonNode.Parse(File.ReadAllText(path))!.AsObject();

    [Fact]
    public void Pipeline_writes_report_html_whose_values_are_those_of_report_json_and_the_stage_files()
    {
        var html = File.ReadAllText(Path.Combine(run.Run, RunReport.FileName));
        var values = ReportPage.Values(html);
        var report = Json(Path.Combine(run.Run, "report.json"));
        foreach (var key in new[] { "cam_miou", "pseudo_miou", "val_miou", "upper_bound_miou", "weak_full_ratio" })
        {
            Assert.NotNull(report[key]);
            Assert.Equal(report[key]!.GetValue<double>(), values[key]);                      // exact: written in round-trip form
        }
        Assert.Equal(run.Report.CamMeanIou, values["cam_miou"]);

        // per-class IoU: the eval files of the stages, column by column
        var camEval = Json(Path.Combine(run.Run, "cam", "eval-cam-class-to-patch.json"));
        var pseudoEval = Json(Path.Combine(run.Run, "eval-pseudo-class-to-patch.json"));
        var valEval = Json(Path.Combine(run.Run, "seg", "class-to-patch-gradclip", "eval-val.json"));
        var upperEval = Json(Path.Combine(run.Run, "seg", "upper-bound", "eval-val.json"));
        var classes = camEval["per_class"]!.AsObject().Select(kv => kv.Key).ToList();
        Assert.Equal(PipelineTestData.Classes + 1, classes.Count);
        foreach (var name in classes)
        {
            Assert.Equal(RunFolder.Number(camEval["per_class"]![name]!["iou"]), values[$"cam.per_class.{name}"]);
            Assert.Equal(RunFolder.Number(pseudoEval["per_class"]![name]!["iou"]), values[$"pseudo.per_class.{name}"]);
            Assert.Equal(RunFolder.Number(valEval["per_class"]![name]!["iou"]), values[$"val_miou_by_decoder.gradclip.per_class.{name}"]);
            Assert.Equal(RunFolder.Number(upperEval["per_class"]![name]!["iou"]), values[$"upper_bound_miou.per_class.{name}"]);
        }
        Assert.Equal(report["val_miou"]!.GetValue<double>(), values["val_miou_by_decoder.gradclip.miou"]);

        // a complete run has nothing "not run"; every stage is listed done
        Assert.DoesNotContain(ReportHtml.NotRun, html);
        Assert.All(ReportPage.Rows(html, "stages"), row => Assert.Contains("<td>done</td><td class=\"num\">", row));
        Assert.All(ReportPage.Rows(html, "stages"), row => Assert.EndsWith("<td>ran</td></tr>\n", row));   // report.json: none reused
        Assert.Equal(8, ReportPage.Rows(html, "stages").Count);

        // 3 loss curves (CAM model, segmenter, upper bound) + the sweep + example tiles (6 train rows × 4, 2 val rows × 4: the val split has 2 images)
        ReportPage.AssertSelfContained(html);
        Assert.Equal(RunReport.RandomExamples + RunReport.WorstExamples, ReportPage.Rows(html, "train-examples").Count);
        Assert.Equal(2, ReportPage.Rows(html, "val-examples").Count);
        Assert.Equal(3 + 1 + 6 * 4 + 2 * 4, ReportPage.Images(html).Count);

        // regenerated from the same records: the same page
        Assert.Equal(html, RunReport.Render(RunFolder.Open(run.Run)));
    }

    [Fact]
    public void Missing_stages_give_a_report_of_what_exists_marked_not_run()
    {
        using var dir = TestPaths.NewTempDir();
        var copy = run.CopyTo(dir.File("partial"));
        // the run as it was after the pseudo labels: no segmenter stages, records or folders
        foreach (var stage in Directory.GetFiles(Path.Combine(copy, "stages"), "*.json").Where(f => Path.GetFileName(f).StartsWith("seg-") || Path.GetFileName(f).StartsWith("upper-")))
            File.Delete(stage);
        Directory.Delete(Path.Combine(copy, "seg"), recursive: true);
        var report = Json(Path.Combine(copy, "report.json"));
        foreach (var key in new[] { "val_miou", "upper_bound_miou", "weak_full_ratio" }) report[key] = null;
        report["val_miou_by_decoder"] = new JsonObject();
        foreach (var stage in report["stage_seconds"]!.AsObject().Select(kv => kv.Key).Where(k => k.StartsWith("seg-") || k.StartsWith("upper-")).ToList())
            report["stage_seconds"]!.AsObject().Remove(stage);
        report["complete"] = false;
        File.WriteAllText(Path.Combine(copy, "report.json"), report.ToJsonString());
        File.Delete(Path.Combine(copy, "cam", "run", "metrics.jsonl"));

        var html = File.ReadAllText(RunReport.Write(copy));
        var values = ReportPage.Values(html);
        Assert.Equal(report["cam_miou"]!.GetValue<double>(), values["cam_miou"]);
        Assert.Equal(report["pseudo_miou"]!.GetValue<double>(), values["pseudo_miou"]);
        Assert.Null(values["val_miou"]);
        Assert.Null(values["upper_bound_miou"]);
        var metrics = ReportPage.Rows(html, "metrics");
        Assert.Contains(metrics, r => r.Contains("data-key=\"val_miou\">not run<", StringComparison.Ordinal));
        Assert.Contains(metrics, r => r.Contains("data-key=\"upper_bound_miou\">not run<", StringComparison.Ordinal));
        var stages = ReportPage.Rows(html, "stages");
        Assert.Contains(stages, r => r.Contains("<td>upper-bound-train</td>") && r.Contains(">not run<"));
        Assert.Contains(stages, r => r.Contains("<td>seg-class-to-patch-DECODER-train</td>") && r.Contains(">not run<"));
        Assert.Contains($"CAM model (weaktr): not run (no {Path.Combine(copy, "cam", "run", "metrics.jsonl")})", html);
        Assert.Contains("no segmenter trained yet", html);
        Assert.Equal(RunReport.RandomExamples + RunReport.WorstExamples, ReportPage.Rows(html, "train-examples").Count);
        ReportPage.AssertSelfContained(html);

        // a run stopped inside its first stage: only an unfinished ledger record
        var early = dir.File("early");
        Directory.CreateDirectory(Path.Combine(early, "stages"));
        File.Copy(Path.Combine(run.Run, "stages", "cam-train.json"), Path.Combine(early, "stages", "cam-train.json"));
        var record = Json(Path.Combine(early, "stages", "cam-train.json"));
        record["status"] = "running";
        File.WriteAllText(Path.Combine(early, "stages", "cam-train.json"), record.ToJsonString());
        var earlyHtml = File.ReadAllText(RunReport.Write(early));
        Assert.Contains("report.json is not written yet", earlyHtml);
        Assert.All(new[] { "cam_miou", "pseudo_miou", "val_miou", "upper_bound_miou" }, key => Assert.Null(ReportPage.Values(earlyHtml)[key]));
        Assert.Contains(ReportPage.Rows(earlyHtml, "stages"), r => r.Contains("<td>cam-train</td>") && r.Contains(">unfinished<"));
        Assert.DoesNotContain("<td>ran</td>", earlyHtml);                                   // unknown without report.json
        ReportPage.AssertSelfContained(earlyHtml);

        // a damaged record is named on the page, not a failed report; a folder without any run is one clear error
        File.WriteAllText(Path.Combine(copy, "cam", "run", "metrics.jsonl"), "{ not json\n");
        Assert.Contains("could not be read", File.ReadAllText(RunReport.Write(copy)));
        Directory.CreateDirectory(dir.File("empty"));
        var e = Assert.Throws<WeakSegException>(() => RunReport.Write(dir.File("empty")));
        Assert.Contains(dir.File("empty"), e.Message);
        Assert.Contains("not a run folder", e.Message);
    }

    [Fact]
    public void Report_verb_regenerates_the_page()
    {
        using var dir = TestPaths.NewTempDir();
        var copy = run.CopyTo(dir.File("run"));
        File.Delete(Path.Combine(copy, RunReport.FileName));
        var result = WeakSeg.Tests.Evaluation.EvalTestData.RunCli("report", copy);
        Assert.True(result.Exit == 0, result.Err);
        Assert.Contains(RunReport.FileName, result.Out);
        Assert.Equal(File.ReadAllText(Path.Combine(run.Run, RunReport.FileName)).Replace(run.Run, copy),
            File.ReadAllText(Path.Combine(copy, RunReport.FileName)));
        var missing = WeakSeg.Tests.Evaluation.EvalTestData.RunCli("report", dir.File("nowhere"));
        Assert.Equal(1, missing.Exit);
        Assert.Contains(dir.File("nowhere"), missing.Err);
        Assert.DoesNotContain("   at ", missing.Err);
    }

    /// <summary>Opens report.html in headless Chromium with a check script placed first in its head: it records every load error
    /// (capture phase) and, once the page has loaded, each image's decoded size into the DOM, which --dump-dom prints.</summary>
    [ChromiumFact]
    public void Report_loads_in_headless_chromium_without_errors_and_every_image_decodes()
    {
        using var dir = TestPaths.NewTempDir();
        var html = File.ReadAllText(Path.Combine(run.Run, RunReport.FileName));
        const string Check = """
            <script>
            var weaksegErrors = [];
            window.addEventListener('error', function (e) { weaksegErrors.push((e.target && e.target.tagName) || String(e.message)); }, true);
            window.addEventListener('load', function () {
              var images = Array.prototype.map.call(document.images, function (i) { return i.complete && i.naturalWidth > 0 ? 'ok' : 'broken'; });
              var out = document.createElement('pre');
              out.id = 'weakseg-check';
              out.textContent = JSON.stringify({ errors: weaksegErrors, images: images });
              document.body.appendChild(out);
            });
            </script>
            """;
        var page = dir.File("report.html");
        File.WriteAllText(page, html.Replace("<head>\n", "<head>\n" + Check + "\n"));
        var dom = Chromium.DumpDom(page, dir.File("profile"));
        var match = Regex.Match(dom, "<pre id=\"weakseg-check\">(.*?)</pre>", RegexOptions.Singleline);
        Assert.True(match.Success, "the check did not run; chromium printed: " + dom[..Math.Min(dom.Length, 500)]);
        var check = JsonNode.Parse(System.Net.WebUtility.HtmlDecode(match.Groups[1].Value))!;
        Assert.Empty(check["errors"]!.AsArray());
        var images = check["images"]!.AsArray().Select(i => i!.GetValue<string>()).ToList();
        Assert.Equal(ReportPage.Images(html).Count, images.Count);
        Assert.All(images, i => Assert.Equal("ok", i));
    }
}

public class ReportExamplesTests
{
    [Fact]
    public void Choice_is_the_seeded_shuffle_then_the_lowest_scores_of_the_pool()
    {
        var names = Enumerable.Range(0, 30).Select(i => $"img{i:00}").ToList();
        double? Score(string n) => n == "img07" ? null : (int.Parse(n[3..]) * 37 % 30) / 30.0;
        var chosen = ReportExamples.Choose(names, Score, seed: 5, random: 3, worst: 2, pool: 12);
        var order = new DeterministicRandom(5).Permutation(30).Select(i => names[i]).ToList();
        Assert.Equal(order.Take(3), chosen.Take(3).Select(c => c.Name));
        Assert.All(chosen.Take(3), c => Assert.Equal("random", c.Reason));
        // brute force: the two lowest scores among pool entries 3..11 (unscored images never count as worst)
        var expectedWorst = order.Skip(3).Take(9).Where(n => Score(n) is not null).OrderBy(n => Score(n)).ThenBy(n => n, StringComparer.Ordinal).Take(2);
        Assert.Equal(expectedWorst, chosen.Skip(3).Select(c => c.Name));
        Assert.All(chosen.Skip(3), c => Assert.Equal("worst", c.Reason));
        Assert.Equal(chosen, ReportExamples.Choose(names, Score, seed: 5, random: 3, worst: 2, pool: 12));
        Assert.NotEqual(chosen.Select(c => c.Name), ReportExamples.Choose(names, Score, seed: 6, random: 3, worst: 2, pool: 12).Select(c => c.Name));
    }

    [Fact]
    public void Image_miou_is_the_mean_over_classes_with_a_union()
    {
        // ground truth 0 0 1 1 / prediction 0 1 1 1 (a 2×2 image; 255 ignored): class 0 IoU 1/2, class 1 IoU 2/3, class 2 absent
        var gt = new LabelMap(2, 2, [0, 0, 1, 1]);
        var pred = new LabelMap(2, 2, [0, 1, 1, 1]);
        Assert.Equal((0.5 + 2.0 / 3) / 2, ReportExamples.ImageMeanIou(pred, gt, 3)!.Value, 12);
        var withIgnore = new LabelMap(2, 2, [255, 0, 1, 1]);
        Assert.Equal((0.0 + 2.0 / 3) / 2, ReportExamples.ImageMeanIou(pred, withIgnore, 3)!.Value, 12);   // class 0: one gt pixel, predicted 1
        Assert.Null(ReportExamples.ImageMeanIou(pred, null, 3));
        Assert.Null(ReportExamples.ImageMeanIou(new LabelMap(1, 1, [0]), gt, 3));
    }
}

/// <summary>A fact that runs only where Debian's <c>chromium</c> is installed (skipped otherwise).</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (Chromium.Path is null) Skip = "chromium is not installed (apt-get install chromium)";
    }
}

static class Chromium
{
    public static string? Path { get; } = new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" }.FirstOrDefault(File.Exists);

    /// <summary>The DOM of <paramref name="htmlFile"/> after its load event, as headless Chromium prints it.</summary>
    public static string DumpDom(string htmlFile, string profileDirectory)
    {
        var start = new ProcessStartInfo(Path!)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var arg in new[] { "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-extensions", $"--user-data-dir={profileDirectory}",
                     "--virtual-time-budget=10000", "--dump-dom", new Uri(htmlFile).AbsoluteUri })
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(120_000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("chromium did not finish in 120 s");
        }
        Assert.True(process.ExitCode == 0, $"chromium exited with {process.ExitCode}: {stderr.Result}");
        return stdout.Result;
    }
}
